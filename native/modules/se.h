// SE: Squeeze-and-Excitation (Hu et al., CVPR 2018): global average pool, a two-layer MLP
// (C -> C/r -> C, no bias, as in the common senet.pytorch layout), sigmoid, channel reweighting.
#pragma once

#include "modules/attention.h"

namespace torch_attn::modules {

class SeImpl : public AttentionModule {
 public:
  SeImpl(int64_t channels, const AttentionOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override;
  NamedMaps Maps(const torch::Tensor& x) override;
  const char* BlockName() const override { return "se"; }
  torch::Tensor Weights(const torch::Tensor& x);  // B x C

  int64_t channels;
  torch::nn::Sequential fc{nullptr};  // fc.0 Linear, fc.1 ReLU, fc.2 Linear
  torch::Tensor gate;                 // defined only with passthrough
};
TORCH_MODULE(Se);

}  // namespace torch_attn::modules
