#include "modules/cbam.h"

#include "modules/batch_norm.h"

namespace torch_attn::modules {

ChannelAttentionImpl::ChannelAttentionImpl(int64_t channels, int64_t ratio, bool bias, std::vector<std::string> pools)
    : pool_types(std::move(pools)) {
  int64_t hidden = std::max<int64_t>(1, channels / ratio);
  // Made one after the other, as PyTorch makes them: the order of a call's arguments is
  // unspecified in C++ (GCC and clang differ), and each layer draws its initial weights.
  torch::nn::Linear squeeze(torch::nn::LinearOptions(channels, hidden).bias(bias));
  torch::nn::Linear excite(torch::nn::LinearOptions(hidden, channels).bias(bias));
  fc = register_module("fc", torch::nn::Sequential(squeeze, torch::nn::ReLU(), excite));
}

namespace {

// One B x C descriptor of x per pool type, as the original CBAM code computes them.
torch::Tensor Pool(const torch::Tensor& x, const std::string& type) {
  // Adaptive pools rather than mean/amax: same values, and max-pool's backward scatters through
  // saved indices where amax's builds an equality mask over the whole input (measured slower).
  if (type == "avg") return torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
  if (type == "max") return std::get<0>(torch::adaptive_max_pool2d(x, {1, 1})).flatten(1);
  if (type == "lp") return x.pow(2).sum({2, 3}).sqrt();  // lp_pool2d with p = 2 over the map
  return x.flatten(2).logsumexp(2);                      // "lse"
}

}  // namespace

torch::Tensor ChannelAttentionImpl::Weights(const torch::Tensor& x) {
  torch::Tensor sum;
  for (const auto& type : pool_types) {
    auto out = fc->forward(Pool(x, type));
    sum = sum.defined() ? sum + out : out;
  }
  return torch::sigmoid(sum);
}

torch::Tensor ChannelAttentionImpl::forward(const torch::Tensor& x) {
  return x * Weights(x).unsqueeze(-1).unsqueeze(-1);
}

SpatialAttentionImpl::SpatialAttentionImpl(int64_t kernel_size, bool max_first, bool batch_norm) : max_first(max_first) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 1, kernel_size).padding(kernel_size / 2).bias(false)));
  if (batch_norm) {
    // As the original CBAM code: momentum 0.01, and its ResNet zeroes this weight at init.
    bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(1).momentum(0.01)));
    torch::NoGradGuard no_grad;
    bn->weight.zero_();
  }
}

torch::Tensor SpatialAttentionImpl::Map(const torch::Tensor& x) {
  auto mean = x.mean(1, /*keepdim=*/true);
  auto max = std::get<0>(x.max(1, /*keepdim=*/true));
  auto out = conv->forward(max_first ? torch::cat({max, mean}, 1) : torch::cat({mean, max}, 1));
  if (bn) out = BatchNorm(*bn, out);
  return torch::sigmoid(out);
}

torch::Tensor SpatialAttentionImpl::forward(const torch::Tensor& x) { return x * Map(x); }

CbamImpl::CbamImpl(int64_t channels, const AttentionOptions& options) : channels(channels) {
  channel_attn = register_module("channel_attn",
                                 ChannelAttention(channels, options.ratio(), options.mlp_bias(), options.pool_types()));
  if (options.spatial()) {
    spatial_attn = register_module(
        "spatial_attn", SpatialAttention(options.kernel_size(), options.spatial_max_first(), options.spatial_bn()));
  }
  if (options.passthrough()) gate = register_parameter("gate", torch::zeros({1}));
}

torch::Tensor CbamImpl::forward(const torch::Tensor& x) {
  CheckInput(x, channels, "CBAM");
  auto out = channel_attn->forward(x);
  if (spatial_attn) out = spatial_attn->forward(out);
  return gate.defined() ? Passthrough(x, out, gate) : out;
}

NamedMaps CbamImpl::Maps(const torch::Tensor& x) {
  CheckInput(x, channels, "CBAM");
  auto channel = channel_attn->Weights(x);
  if (!spatial_attn) return {{"channel", channel}};
  auto spatial = spatial_attn->Map(x * channel.unsqueeze(-1).unsqueeze(-1));
  return {{"channel", channel}, {"spatial", spatial}};
}

}  // namespace torch_attn::modules
