// ECA: Efficient Channel Attention (Wang et al., CVPR 2020): a 1-D convolution across the
// channel descriptors, its kernel size chosen from C: k = odd(|(log2(C) + b) / gamma|).
#pragma once

#include "modules/attention.h"

namespace torch_attn::modules {

// The kernel size ECA uses for `channels` channels.
int64_t EcaKernelSize(int64_t channels, int64_t gamma, int64_t b);

class EcaImpl : public AttentionModule {
 public:
  EcaImpl(int64_t channels, const AttentionOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override;
  NamedMaps Maps(const torch::Tensor& x) override;
  const char* BlockName() const override { return "eca"; }
  torch::Tensor Weights(const torch::Tensor& x);  // B x C

  int64_t channels;
  torch::nn::Conv1d conv{nullptr};  // 1 -> 1 channel, kernel k, no bias
};
TORCH_MODULE(Eca);

}  // namespace torch_attn::modules
