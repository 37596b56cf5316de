#include "modules/eca.h"

#include <cmath>

namespace torch_attn::modules {

int64_t EcaKernelSize(int64_t channels, int64_t gamma, int64_t b) {
  auto t = static_cast<int64_t>(std::abs((std::log2(static_cast<double>(channels)) + b) / gamma));
  return t % 2 == 1 ? t : t + 1;
}

EcaImpl::EcaImpl(int64_t channels, const AttentionOptions& options) : channels(channels) {
  int64_t k = EcaKernelSize(channels, options.eca_gamma(), options.eca_b());
  conv = register_module("conv", torch::nn::Conv1d(torch::nn::Conv1dOptions(1, 1, k).padding((k - 1) / 2).bias(false)));
}

torch::Tensor EcaImpl::Weights(const torch::Tensor& x) {
  auto descriptors = x.mean({2, 3}).unsqueeze(1);  // B x 1 x C
  return torch::sigmoid(conv->forward(descriptors)).squeeze(1);
}

torch::Tensor EcaImpl::forward(const torch::Tensor& x) {
  CheckInput(x, channels, "ECA");
  return x * Weights(x).unsqueeze(-1).unsqueeze(-1);
}

NamedMaps EcaImpl::Maps(const torch::Tensor& x) {
  CheckInput(x, channels, "ECA");
  return {{"channel", Weights(x)}};
}

}  // namespace torch_attn::modules
