#!/usr/bin/env bash
# The test suite once more against an ASan + UBSan build of the addon (clang), so memory errors and
# undefined behaviour in the native code fail loudly instead of passing by luck.
#   npm run test:asan [-- vitest arguments, e.g. test/data]
# Needs clang and its runtime: sudo apt-get install -y clang libclang-rt-14-dev. The build goes to
# build-asan/ (the normal build/ is untouched); node is not instrumented, so the sanitizer runtime
# is preloaded. Leak checking is off: V8 and LibTorch keep global allocations until exit.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang++ >/dev/null || { echo "test:asan: clang++ not found (sudo apt-get install -y clang libclang-rt-14-dev)" >&2; exit 2; }
runtime=$(clang++ -print-file-name=libclang_rt.asan-x86_64.so)
[ -f "$runtime" ] || { echo "test:asan: $runtime is missing (sudo apt-get install -y libclang-rt-14-dev)" >&2; exit 2; }

node node_modules/cmake-js/bin/cmake-js build --out build-asan --prefer-clang --config RelWithDebInfo \
  --CDTORCH_ATTN_SANITIZE=ON --parallel "$(nproc)" --log-level warn

export TORCH_ATTN_ADDON=$PWD/build-asan/RelWithDebInfo/torch_attn.node
readelf -d "$TORCH_ATTN_ADDON" | grep -q 'libclang_rt.asan' || { echo "test:asan: $TORCH_ATTN_ADDON is not a sanitizer build" >&2; exit 2; }
export LD_PRELOAD=$runtime
# allocator_may_return_null: an impossible allocation fails as it does without ASan (LibTorch
# throws, torch-attn reports ERR_TORCH_ATTN_OOM) instead of aborting. TORCH_ATTN_SANITIZED skips
# the tests that measure resident memory (ASan's quarantine holds freed memory on purpose).
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allow_user_segv_handler=1:allocator_may_return_null=1
export TORCH_ATTN_SANITIZED=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
exec npx vitest run --testTimeout 120000 --hookTimeout 120000 "$@"
