#include "modules/se.h"

namespace torch_attn::modules {

SeImpl::SeImpl(int64_t channels, const AttentionOptions& options) : channels(channels) {
  int64_t hidden = std::max<int64_t>(1, channels / options.ratio());
  // One after the other, as PyTorch makes them (see ChannelAttentionImpl in cbam.cc).
  torch::nn::Linear squeeze(torch::nn::LinearOptions(channels, hidden).bias(false));
  torch::nn::Linear excite(torch::nn::LinearOptions(hidden, channels).bias(false));
  fc = register_module("fc", torch::nn::Sequential(squeeze, torch::nn::ReLU(), excite));
  if (options.passthrough()) gate = register_parameter("gate", torch::zeros({1}));
}

torch::Tensor SeImpl::Weights(const torch::Tensor& x) { return torch::sigmoid(fc->forward(x.mean({2, 3}))); }

torch::Tensor SeImpl::forward(const torch::Tensor& x) {
  CheckInput(x, channels, "SE");
  auto out = x * Weights(x).unsqueeze(-1).unsqueeze(-1);
  return gate.defined() ? Passthrough(x, out, gate) : out;
}

NamedMaps SeImpl::Maps(const torch::Tensor& x) {
  CheckInput(x, channels, "SE");
  return {{"channel", Weights(x)}};
}

}  // namespace torch_attn::modules
