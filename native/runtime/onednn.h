// The oneDNN that LibTorch runs CPU convolutions with, and the defects of known builds that
// torch-attn works around. Core only: no N-API.
#pragma once

#include <string>

namespace torch_attn::runtime {

struct OneDnn {
  std::string version;  // "3.7.2"; empty when LibTorch's oneDNN is not a shared library we can ask
  // oneDNN 3.7 (Debian 13's LibTorch 2.6) computes wrong results, in PyTorch alone as in
  // torch-attn (scripts/repro-libtorch26-conv.py): its AVX-512 kernels give channels-last
  // ResNet18-CBAM logits 1e-2 away from float64's, and its AVX-512 and AVX2 convolution backward
  // passes now and then give non-finite or wrong gradients (PyTorch 2.6 alone: a 2 -> 1 channel
  // 7 x 7 convolution's gradient non-finite in 1 of 40 seeded runs capped to AVX2; torch-attn's
  // 2-rank CBAM-CNN fit on CIFAR-10 reaches NaN in 3 of 3 runs capped to AVX2 on one thread, each
  // time different). Its SSE4.1 kernels are right (0 of 80, 0 of 6 fits on one and two threads,
  // each run bit-identical), as is LibTorch with oneDNN off (3.3x slower). So on that build the
  // addon sets ONEDNN_MAX_CPU_ISA=SSE41, unless the user has chosen (ONEDNN_MAX_CPU_ISA).
  bool isa_capped = false;
};

// Asked once, from the loaded libdnnl (dlopen with RTLD_NOLOAD: nothing is loaded by asking).
const OneDnn& GetOneDnn();

// Called when the addon loads, before LibTorch runs anything: caps oneDNN's instruction set on
// builds known to be wrong above it.
void ApplyOneDnnWorkarounds();

}  // namespace torch_attn::runtime
