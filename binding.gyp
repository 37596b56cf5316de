# node-gyp build of the same addon (the fallback; cmake-js with CMakeLists.txt is the main build).
# Sources come from native/sources.json and LibTorch's location from scripts/libtorch.js, so this
# file holds no second list of either.
{
  "targets": [
    {
      "target_name": "torch_attn",
      "sources": ["<!@(node scripts/libtorch.js --gyp-sources)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native",
        "<!@(node scripts/libtorch.js --gyp-include)"
      ],
      "defines": ["<!@(node scripts/libtorch.js --gyp-defines)"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++1y"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-Wno-unused-parameter", "<!@(node scripts/libtorch.js --gyp-cflags)"],
      "ldflags": ["<!@(node scripts/libtorch.js --gyp-ldflags)"],
      "libraries": ["<!@(node scripts/libtorch.js --gyp-libs)", "-lturbojpeg", "-lpng16", "-ldl"]
    }
  ]
}
