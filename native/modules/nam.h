// NAM: Normalization-based Attention Module (Liu et al., 2021): the BatchNorm scaling factors
// gamma, normalised as |gamma| / sum|gamma|, weight the normalised input, through a sigmoid,
// into x. Channel variant over C; pixel variant over the H*W positions.
#pragma once

#include "modules/attention.h"

namespace torch_attn::modules {

// One NAM sub-module: BatchNorm over `features` (channels, or pixels) named bn2 as in the
// original code; `pixel` selects BatchNorm1d over positions.
class NamGateImpl : public torch::nn::Module {
 public:
  NamGateImpl(int64_t features, bool pixel, bool detach_weights);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor Weights();  // |gamma| / sum|gamma|

  bool pixel;
  bool detach_weights;
  torch::nn::BatchNorm2d bn2{nullptr};
  torch::nn::BatchNorm1d bn2_pixel{nullptr};
};
TORCH_MODULE(NamGate);

class NamImpl : public AttentionModule {
 public:
  NamImpl(int64_t channels, const AttentionOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override;
  NamedMaps Maps(const torch::Tensor& x) override;
  const char* BlockName() const override { return "nam"; }

  int64_t channels;
  int64_t pixel_size;
  NamGate Channel_Att{nullptr};
  NamGate Pixel_Att{nullptr};  // only with the pixel variant
};
TORCH_MODULE(Nam);

// The NAM scaling factors (gamma of every NAM BatchNorm) among a model's parameters, by name.
std::vector<std::pair<std::string, torch::Tensor>> NamScalingFactors(const torch::nn::Module& model);

// lambda * sum|gamma| over the NAM scaling factors: the penalty's value, for logging.
double NamSparsityPenalty(const torch::nn::Module& model, double lambda);

// The NAM sparsity penalty lambda * sum|gamma|, applied as the original code does: after
// backward, adds lambda * sign(gamma) to each NAM gamma's gradient (none to the backbone's BNs).
void ApplyNamSparsity(const torch::nn::Module& model, double lambda);

}  // namespace torch_attn::modules
