#include "models/winograd_training.h"

#include "common/torch_compat.h"
#include "models/winograd.h"

#include <torch/csrc/autograd/custom_function.h>

#include <tuple>

namespace torch_attn::models {

namespace variants = compat::variants;

namespace {

thread_local bool winograd_training = false;

// The form the kernel takes in training for an input of n x in_channels x h x w: F(4x4) (4),
// F(2x2) (2) or none (0). The weights change with every step, so each call transforms them (twice
// a step: forward and the input's gradient), which needs more tiles to pay than a plan's
// convolution does: from kWinogradTrainingMinTiles 2 x 2 tiles. Measured on ResNet18-CBAM, batch
// 64 at 32 x 32, on this project's 2-core machine, training steps in alternating processes:
// layer4 (256 tiles) by Winograd too 960-981 ms a float32 step, without it 928-974; layer3 (1024)
// left out as well, 951-968; layer2 too, 1039-1050 (the direct kernels: 1162-1245).
constexpr int64_t kWinogradTrainingMinTiles = 1024;

int TileFor(at::ScalarType dtype, int64_t n, int64_t h, int64_t w, int64_t in_channels, int64_t out_channels) {
  if (!WinogradSupported(dtype) || !WinogradFits(in_channels, out_channels) || WinogradTileCount(n, h, w, 2) < kWinogradTrainingMinTiles) return 0;
  return WinogradF4Pays(dtype, n, h, w, in_channels, out_channels) && !WinogradF4Stationary(in_channels, out_channels) ? 4 : 2;
}

// The dtype the convolution computes in: autocast's lower precision where it is on (it casts a
// convolution's inputs so), else the input's.
at::ScalarType ComputeDtype(const torch::Tensor& x) {
  return compat::AutocastEnabled(c10::DeviceType::CPU) ? compat::AutocastDtype(c10::DeviceType::CPU) : x.scalar_type();
}

// conv3x3(x, weight), stride 1, padding 1, by the kernel; the output channels-last.
torch::Tensor Run(const torch::Tensor& x, const torch::Tensor& weight, int tile) {
  const auto input = x.contiguous(at::MemoryFormat::ChannelsLast);
  const auto u = WinogradWeights(weight, tile);
  const auto bias = torch::zeros({weight.size(0)}, x.options().dtype(at::kFloat));
  auto out = torch::empty({x.size(0), weight.size(0), x.size(2), x.size(3)}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  RunWinograd(input, u, bias, /*relu=*/false, /*accumulate=*/false, out);
  return out;
}

struct WinogradConvFunction : public torch::autograd::Function<WinogradConvFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight, int64_t tile) {
    ctx->save_for_backward({x, weight});
    return Run(x, weight, static_cast<int>(tile));
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const auto& grad = grads[0];
    // Each gradient by the kernel where its shape pays, its form chosen for its own channels (the
    // same tiles): the input's is conv3x3(grad, weight with in/out swapped and rotated by 180
    // degrees); the weight's is WinogradWeightGradient (float32: bfloat16 keeps LibTorch's, see
    // winograd_training.h). The others by LibTorch's convolution backward.
    const int64_t n = grad.size(0), h = grad.size(2), w = grad.size(3), oc = weight.size(0), ic = weight.size(1);
    const int tile_x = ctx->needs_input_grad(0) ? TileFor(grad.scalar_type(), n, h, w, oc, ic) : 0;
    const int tile_w = ctx->needs_input_grad(1) && x.scalar_type() == at::kFloat ? TileFor(at::kFloat, n, h, w, ic, oc) : 0;
    const bool libtorch_x = ctx->needs_input_grad(0) && tile_x == 0, libtorch_weight = ctx->needs_input_grad(1) && tile_w == 0;
    torch::Tensor grad_x, grad_weight;
    if (libtorch_x || libtorch_weight) {
      std::tie(grad_x, grad_weight, std::ignore) = at::convolution_backward(grad, x, weight, c10::nullopt, {1, 1}, {1, 1}, {1, 1}, false, {0, 0}, 1,
                                                                            {libtorch_x, libtorch_weight, false});
    }
    if (tile_x != 0) grad_x = Run(grad, weight.transpose(0, 1).flip({2, 3}), tile_x);
    if (tile_w != 0) {
      const auto channels_last = at::MemoryFormat::ChannelsLast;
      grad_weight = WinogradWeightGradient(x.contiguous(channels_last), grad.contiguous(channels_last), tile_w).contiguous(weight.suggest_memory_format());
    }
    return {grad_x, grad_weight, torch::Tensor()};
  }
};

}  // namespace

WinogradTrainingScope::WinogradTrainingScope(bool on) : previous_(winograd_training) { winograd_training = on; }
WinogradTrainingScope::~WinogradTrainingScope() { winograd_training = previous_; }

int WinogradTrainingTile(const torch::nn::Conv2dImpl& conv, const torch::Tensor& x) {
  if (!winograd_training || !torch::GradMode::is_enabled()) return 0;
  const auto& o = conv.options;
  const auto& weight = conv.weight;
  const auto ones = [](at::IntArrayRef a) { return a.size() == 2 && a[0] == 1 && a[1] == 1; };
  if (conv.bias.defined() || o.transposed() || o.groups() != 1 || !x.device().is_cpu() || x.dim() != 4 || weight.dim() != 4 ||
      weight.size(2) != 3 || weight.size(3) != 3 || !ones(*o.stride()) || !ones(*o.dilation()) ||
      !variants::holds_alternative<torch::ExpandingArray<2>>(o.padding()) || !ones(*variants::get<torch::ExpandingArray<2>>(o.padding())) ||
      !variants::holds_alternative<torch::enumtype::kZeros>(o.padding_mode())) {
    return 0;
  }
  const auto dtype = ComputeDtype(x);
  if (dtype != x.scalar_type() && !(dtype == at::kBFloat16 && x.scalar_type() == at::kFloat)) return 0;
  if (dtype != weight.scalar_type() && !(dtype == at::kBFloat16 && weight.scalar_type() == at::kFloat)) return 0;
  return TileFor(dtype, x.size(0), x.size(2), x.size(3), weight.size(1), weight.size(0));
}

torch::Tensor WinogradTrainingConv(torch::nn::Conv2dImpl& conv, const torch::Tensor& x, int tile) {
  const auto dtype = ComputeDtype(x);
  // Cast outside the function, as autocast casts a convolution's inputs: their gradients are cast
  // back by autograd.
  const auto input = x.to(dtype);
  const auto weight = conv.weight.to(dtype);
  return WinogradConvFunction::apply(input, weight, static_cast<int64_t>(tile));
}

torch::Tensor WinogradConv3x3(const torch::Tensor& x, const torch::Tensor& weight, int tile) {
  TORCH_CHECK(x.scalar_type() == weight.scalar_type() && (tile == 2 || tile == 4), "WinogradConv3x3: x and weight of one dtype, tile 2 or 4");
  return WinogradConvFunction::apply(x, weight, static_cast<int64_t>(tile));
}

}  // namespace torch_attn::models
