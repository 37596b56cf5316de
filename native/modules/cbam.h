// CBAM: Convolutional Block Attention Module (Woo et al., ECCV 2018): channel attention from
// avg- and max-pooled descriptors through a shared MLP, then spatial attention from a k x k conv
// over the channel-wise mean and max.
#pragma once

#include "modules/attention.h"

namespace torch_attn::modules {

class ChannelAttentionImpl : public torch::nn::Module {
 public:
  ChannelAttentionImpl(int64_t channels, int64_t ratio, bool bias, std::vector<std::string> pool_types);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor Weights(const torch::Tensor& x);  // B x C, in (0, 1)
  torch::nn::Sequential fc{nullptr};              // fc.0 Linear C->C/r, fc.1 ReLU, fc.2 Linear C/r->C
  std::vector<std::string> pool_types;            // each pooled descriptor goes through fc; summed
};
TORCH_MODULE(ChannelAttention);

class SpatialAttentionImpl : public torch::nn::Module {
 public:
  SpatialAttentionImpl(int64_t kernel_size, bool max_first, bool batch_norm);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor Map(const torch::Tensor& x);  // B x 1 x H x W, in (0, 1)
  torch::nn::Conv2d conv{nullptr};            // 2 -> 1 channels, no bias
  torch::nn::BatchNorm2d bn{nullptr};         // only with spatial_bn
  bool max_first;
};
TORCH_MODULE(SpatialAttention);

class CbamImpl : public AttentionModule {
 public:
  CbamImpl(int64_t channels, const AttentionOptions& options);
  torch::Tensor forward(const torch::Tensor& x) override;
  NamedMaps Maps(const torch::Tensor& x) override;
  const char* BlockName() const override { return "cbam"; }

  int64_t channels;
  ChannelAttention channel_attn{nullptr};
  SpatialAttention spatial_attn{nullptr};
  torch::Tensor gate;  // defined only with passthrough
};
TORCH_MODULE(Cbam);

}  // namespace torch_attn::modules
