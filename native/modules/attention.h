// The attention-module interface every kind implements, its options, and the string-keyed
// factory the models use (as timm's create_attn).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace torch_attn::modules {

// Options for every kind; each kind reads the fields that concern it. Mirrored 1:1 by the
// TypeScript AttentionOptions interface.
struct AttentionOptions {
  TORCH_ARG(std::string, kind) = "cbam";  // cbam | nam | se | eca | none
  TORCH_ARG(int64_t, ratio) = 16;         // cbam, se: hidden width = channels / ratio (at least 1)
  TORCH_ARG(int64_t, kernel_size) = 7;    // cbam: spatial conv size (odd)
  TORCH_ARG(bool, passthrough) = false;   // cbam, se: exactly the identity at initialisation
  // cbam flavours found in the wild (defaults: the layout of DESIGN.md):
  TORCH_ARG(bool, mlp_bias) = false;                                          // biases in fc.0 / fc.2
  TORCH_ARG(std::vector<std::string>, pool_types) = std::vector<std::string>({"avg", "max"});  // avg max lp lse
  TORCH_ARG(bool, spatial_max_first) = false;  // spatial input [max, mean] (original code) or [mean, max]
  TORCH_ARG(bool, spatial_bn) = false;         // BatchNorm2d(1) after the spatial conv (momentum 0.01, weight 0)
  TORCH_ARG(bool, spatial) = true;             // false: channel attention only
  TORCH_ARG(bool, detach_weights) = false;  // nam: take |gamma| / sum|gamma| without gradient
  TORCH_ARG(int64_t, pixel_size) = 0;     // nam: H*W of the input enables the pixel variant
  TORCH_ARG(int64_t, eca_gamma) = 2;      // eca: kernel size k = odd(|log2(C) + b| / gamma)
  TORCH_ARG(int64_t, eca_b) = 1;
};

using NamedMaps = std::vector<std::pair<std::string, torch::Tensor>>;

// An attention module: forward(x) has x's shape; Maps(x) returns what it computed to reweight x
// (channel weights B x C, spatial map B x 1 x H x W, ...) for inspection.
class AttentionModule : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  virtual NamedMaps Maps(const torch::Tensor& x) = 0;
  // The state-dict name this kind's modules get inside a residual block (`nam`, `cbam`, ...).
  virtual const char* BlockName() const = 0;
};

// Throws RangeError for an unknown kind or options the kind cannot take (even kernel size,
// ratio larger than channels, ...). Returns nullptr for kind "none".
std::shared_ptr<AttentionModule> MakeAttention(const AttentionOptions& options, int64_t channels);

// Checks options without building (so a model can refuse bad options before any allocation).
void ValidateAttention(const AttentionOptions& options, int64_t channels);

// Wraps an attention output so the module is exactly the identity at initialisation:
// y = x + gate * (attended - x), with a learnable scalar gate that starts at 0.
torch::Tensor Passthrough(const torch::Tensor& x, const torch::Tensor& attended, const torch::Tensor& gate);

// Checks a module input: 4-D, `channels` channels; RangeError naming the module otherwise.
void CheckInput(const torch::Tensor& x, int64_t channels, const char* module);

}  // namespace torch_attn::modules
