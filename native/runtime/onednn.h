// The oneDNN that LibTorch runs CPU convolutions with, and the defects of known builds that
// torch-attn works around. Core only: no N-API.
#pragma once

#include <string>

namespace torch_attn::runtime {

struct OneDnn {
  std::string version;  // "3.7.2"; empty when LibTorch's oneDNN is not a shared library we can ask
  // oneDNN 3.7 (Debian 13's LibTorch 2.6) computes wrong results in its AVX-512 kernels: now and
  // then non-finite or wrong input gradients from multi-threaded convolutions whose channel counts
  // it pads, and channels-last ResNet18-CBAM logits 1e-2 away from float64's, in PyTorch alone
  // as in torch-attn (scripts/repro-libtorch26-conv.py). Capped to AVX2 it is right. Where true,
  // the addon set ONEDNN_MAX_CPU_ISA=AVX2 when it loaded (never over a value the user set).
  bool isa_capped = false;
};

// Asked once, from the loaded libdnnl (dlopen with RTLD_NOLOAD: nothing is loaded by asking).
const OneDnn& GetOneDnn();

// Called when the addon loads, before LibTorch runs anything: caps oneDNN's instruction set on
// builds known to be wrong above it.
void ApplyOneDnnWorkarounds();

}  // namespace torch_attn::runtime
