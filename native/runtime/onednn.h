// The oneDNN that LibTorch runs CPU convolutions with, and the defects of known builds that
// torch-attn works around. Core only: no N-API.
#pragma once

#include <string>

namespace torch_attn::runtime {

struct OneDnn {
  std::string version;  // "3.7.2"; empty when LibTorch's oneDNN is not a shared library we can ask
  // oneDNN 3.7 (Debian 13's LibTorch 2.6) computes wrong results, in PyTorch alone as in
  // torch-attn (scripts/repro-libtorch26-conv.py): its AVX-512 kernels give channels-last
  // ResNet18-CBAM logits 1e-2 away from float64's (right when capped to AVX2), and with more than
  // one thread its convolution backward passes now and then give non-finite or wrong gradients
  // (CBAM-CNN training reaches NaN in 6 of 6 seeded runs, 4 of 6 capped to AVX2, 0 of 6 with one
  // thread or with oneDNN off). So on that build the addon sets ONEDNN_MAX_CPU_ISA=AVX2 and an
  // intra-op default of one thread, each only where the user has not chosen (ONEDNN_MAX_CPU_ISA,
  // OMP_NUM_THREADS; setNumThreads() still overrides).
  bool isa_capped = false;
  bool single_threaded = false;
};

// Asked once, from the loaded libdnnl (dlopen with RTLD_NOLOAD: nothing is loaded by asking).
const OneDnn& GetOneDnn();

// Called when the addon loads, before LibTorch runs anything: caps oneDNN's instruction set on
// builds known to be wrong above it.
void ApplyOneDnnWorkarounds();

}  // namespace torch_attn::runtime
