#include "modules/nam.h"

#include "common/errors.h"
#include "modules/batch_norm.h"

namespace torch_attn::modules {

NamGateImpl::NamGateImpl(int64_t features, bool pixel, bool detach_weights)
    : pixel(pixel), detach_weights(detach_weights) {
  if (pixel) {
    bn2_pixel = register_module("bn2", torch::nn::BatchNorm1d(features));
  } else {
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(features));
  }
}

torch::Tensor NamGateImpl::Weights() {
  auto gamma = pixel ? bn2_pixel->weight : bn2->weight;
  if (detach_weights) gamma = gamma.detach();
  auto magnitude = gamma.abs();
  return magnitude / magnitude.sum();
}

torch::Tensor NamGateImpl::forward(const torch::Tensor& x) {
  if (!pixel) {
    auto normalised = BatchNorm(*bn2, x) * Weights().view({1, -1, 1, 1});
    return torch::sigmoid(normalised) * x;
  }
  // Positions as BatchNorm1d channels: B x C x H x W -> B x HW x C.
  auto b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto flat = x.reshape({b, c, h * w}).transpose(1, 2);
  auto normalised = BatchNorm(*bn2_pixel, flat) * Weights().view({1, -1, 1});
  auto gate = torch::sigmoid(normalised).transpose(1, 2).reshape({b, c, h, w});
  return gate * x;
}

NamImpl::NamImpl(int64_t channels, const AttentionOptions& options)
    : channels(channels), pixel_size(options.pixel_size()) {
  Channel_Att = register_module("Channel_Att", NamGate(channels, false, options.detach_weights()));
  if (pixel_size > 0) Pixel_Att = register_module("Pixel_Att", NamGate(pixel_size, true, options.detach_weights()));
}

torch::Tensor NamImpl::forward(const torch::Tensor& x) {
  CheckInput(x, channels, "NAM");
  auto out = Channel_Att->forward(x);
  if (Pixel_Att) {
    if (x.size(2) * x.size(3) != pixel_size) {
      throw RangeError("NAM pixel attention was built for " + std::to_string(pixel_size) +
                       " positions (H*W) but the input has " + std::to_string(x.size(2)) + "x" +
                       std::to_string(x.size(3)));
    }
    out = Pixel_Att->forward(out);
  }
  return out;
}

NamedMaps NamImpl::Maps(const torch::Tensor& x) {
  CheckInput(x, channels, "NAM");
  auto gated = torch::sigmoid(BatchNorm(*Channel_Att->bn2, x) * Channel_Att->Weights().view({1, -1, 1, 1}));
  NamedMaps maps{{"channelScale", Channel_Att->Weights()}, {"channel", gated}};
  if (Pixel_Att) maps.emplace_back("pixelScale", Pixel_Att->Weights());
  return maps;
}

std::vector<std::pair<std::string, torch::Tensor>> NamScalingFactors(const torch::nn::Module& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : model.named_modules()) {
    if (auto* gate = item.value()->as<NamGateImpl>()) {
      auto gamma = gate->pixel ? gate->bn2_pixel->weight : gate->bn2->weight;
      out.emplace_back(item.key().empty() ? "bn2.weight" : item.key() + ".bn2.weight", gamma);
    }
  }
  return out;
}

double NamSparsityPenalty(const torch::nn::Module& model, double lambda) {
  torch::NoGradGuard no_grad;
  double total = 0;
  for (auto& [name, gamma] : NamScalingFactors(model)) total += gamma.abs().sum().item<double>();
  return lambda * total;
}

void ApplyNamSparsity(const torch::nn::Module& model, double lambda) {
  if (lambda == 0) return;
  torch::NoGradGuard no_grad;
  for (auto& [name, gamma] : NamScalingFactors(model)) {
    if (gamma.requires_grad() && gamma.grad().defined()) gamma.mutable_grad().add_(torch::sign(gamma), lambda);
  }
}

}  // namespace torch_attn::modules
