// The oneDNN that LibTorch runs convolutions with, and the defects of known builds that
// torch-attn works around. Core only: no N-API.
#pragma once

#include <string>

namespace torch_attn::runtime {

struct OneDnn {
  std::string version;  // "3.7.2"; empty when LibTorch's oneDNN is not a shared library we can ask
  // oneDNN 3.7 (Debian 13's LibTorch 2.6) returns non-finite input gradients, now and then, from
  // the AVX-512 backward-data kernel of convolutions whose channel counts oneDNN pads (not a
  // multiple of 16) when more than one thread runs it (scripts/repro-libtorch26-conv.py, with
  // PyTorch alone). Where true, such convolutions take their input gradient from ATen's own
  // (im2col) kernel: modules/conv.h. The environment variable TORCH_ATTN_CONV_INPUT_GRAD=aten
  // forces that path on any build, =onednn forces it off.
  bool padded_conv_backward_unsafe = false;
};

// Asked once (RangeError on a bad TORCH_ATTN_CONV_INPUT_GRAD), from the loaded libdnnl (dlopen with RTLD_NOLOAD: nothing is loaded by asking).
const OneDnn& GetOneDnn();

}  // namespace torch_attn::runtime
