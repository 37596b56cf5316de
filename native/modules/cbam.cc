#include "modules/cbam.h"

namespace torch_attn::modules {

ChannelAttentionImpl::ChannelAttentionImpl(int64_t channels, int64_t ratio) {
  int64_t hidden = std::max<int64_t>(1, channels / ratio);
  fc = register_module("fc", torch::nn::Sequential(
                                 torch::nn::Linear(torch::nn::LinearOptions(channels, hidden).bias(false)),
                                 torch::nn::ReLU(),
                                 torch::nn::Linear(torch::nn::LinearOptions(hidden, channels).bias(false))));
}

torch::Tensor ChannelAttentionImpl::Weights(const torch::Tensor& x) {
  auto avg = x.mean({2, 3});
  auto max = x.amax({2, 3});
  return torch::sigmoid(fc->forward(avg) + fc->forward(max));
}

torch::Tensor ChannelAttentionImpl::forward(const torch::Tensor& x) {
  return x * Weights(x).unsqueeze(-1).unsqueeze(-1);
}

SpatialAttentionImpl::SpatialAttentionImpl(int64_t kernel_size) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 1, kernel_size).padding(kernel_size / 2).bias(false)));
}

torch::Tensor SpatialAttentionImpl::Map(const torch::Tensor& x) {
  auto pooled = torch::cat({x.mean(1, /*keepdim=*/true), std::get<0>(x.max(1, /*keepdim=*/true))}, 1);
  return torch::sigmoid(conv->forward(pooled));
}

torch::Tensor SpatialAttentionImpl::forward(const torch::Tensor& x) { return x * Map(x); }

CbamImpl::CbamImpl(int64_t channels, const AttentionOptions& options) : channels(channels) {
  channel_attn = register_module("channel_attn", ChannelAttention(channels, options.ratio()));
  spatial_attn = register_module("spatial_attn", SpatialAttention(options.kernel_size()));
  if (options.passthrough()) gate = register_parameter("gate", torch::zeros({1}));
}

torch::Tensor CbamImpl::forward(const torch::Tensor& x) {
  CheckInput(x, channels, "CBAM");
  auto out = spatial_attn->forward(channel_attn->forward(x));
  return gate.defined() ? Passthrough(x, out, gate) : out;
}

NamedMaps CbamImpl::Maps(const torch::Tensor& x) {
  CheckInput(x, channels, "CBAM");
  auto channel = channel_attn->Weights(x);
  auto spatial = spatial_attn->Map(x * channel.unsqueeze(-1).unsqueeze(-1));
  return {{"channel", channel}, {"spatial", spatial}};
}

}  // namespace torch_attn::modules
