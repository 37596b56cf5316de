#include "modules/conv.h"

#include <ATen/ATen.h>

#include "common/torch_compat.h"
#include "runtime/onednn.h"

namespace torch_attn::modules {

namespace {

namespace variants = compat::variants;

// A convolution whose forward pass is at::convolution's and whose input gradient is ATen's
// im2col kernel (_slow_conv2d_backward) instead of oneDNN's; the weight gradient stays oneDNN's,
// which is sound. 1-D convolutions are 2-D ones with a height of 1. Without bias: every such
// convolution in torch-attn has none (an undefined tensor cannot be an autograd input).
class ImColBackwardConv : public torch::autograd::Function<ImColBackwardConv> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, std::vector<int64_t> stride,
                               std::vector<int64_t> padding) {
    ctx->save_for_backward({x, weight});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    const std::vector<int64_t> dilation(stride.size(), 1), output_padding(stride.size(), 0);
    return at::convolution(x, weight, c10::nullopt, stride, padding, dilation, /*transposed=*/false, output_padding,
                           /*groups=*/1);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    const auto stride = ctx->saved_data["stride"].toIntVector();
    const auto padding = ctx->saved_data["padding"].toIntVector();
    const auto grad = grads[0].contiguous();
    torch::Tensor grad_x, grad_w;
    if (ctx->needs_input_grad(0)) {
      const bool one_d = x.dim() == 3;
      auto x4 = one_d ? x.unsqueeze(2) : x;
      auto w4 = one_d ? weight.unsqueeze(2) : weight;
      auto g4 = one_d ? grad.unsqueeze(2) : grad;
      std::vector<int64_t> s4 = one_d ? std::vector<int64_t>{1, stride[0]} : stride;
      std::vector<int64_t> p4 = one_d ? std::vector<int64_t>{0, padding[0]} : padding;
      std::vector<int64_t> k4(w4.sizes().begin() + 2, w4.sizes().end());
      grad_x = std::get<0>(at::_slow_conv2d_backward(g4, x4.contiguous(), w4.contiguous(), k4, s4, p4, {true, false, false}));
      if (one_d) grad_x = grad_x.squeeze(2);
    }
    if (ctx->needs_input_grad(1)) {
      const std::vector<int64_t> dilation(stride.size(), 1), output_padding(stride.size(), 0);
      grad_w = std::get<1>(at::convolution_backward(grad, x, weight, c10::nullopt, stride, padding, dilation,
                                                    /*transposed=*/false, output_padding, /*groups=*/1, {false, true, false}));
    }
    return {grad_x, grad_w, torch::Tensor(), torch::Tensor()};
  }
};

template <size_t D, typename Impl>
bool NeedsImColBackward(const Impl& conv, const torch::Tensor& x) {
  if (!runtime::GetOneDnn().padded_conv_backward_unsafe || conv.bias.defined()) return false;
  const auto& o = conv.options;
  if (!torch::GradMode::is_enabled() || !x.requires_grad() || !x.device().is_cpu() || at::get_num_threads() < 2) return false;
  if (o.in_channels() % 16 == 0 && o.out_channels() % 16 == 0) return false;
  if (o.groups() != 1 || o.transposed() || !variants::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()) ||
      !variants::holds_alternative<torch::ExpandingArray<D>>(o.padding())) {
    return false;
  }
  for (auto d : *o.dilation()) {
    if (d != 1) return false;
  }
  return true;
}

template <size_t D, typename Impl>
torch::Tensor RunConv(Impl& conv, const torch::Tensor& x) {
  const auto& o = conv.options;
  if (!NeedsImColBackward<D>(conv, x)) return conv.forward(x);
  const auto& padding = variants::get<torch::ExpandingArray<D>>(o.padding());
  return ImColBackwardConv::apply(x, conv.weight, std::vector<int64_t>(o.stride()->begin(), o.stride()->end()),
                                  std::vector<int64_t>(padding->begin(), padding->end()));
}

}  // namespace

torch::Tensor Conv(torch::nn::Conv2dImpl& conv, const torch::Tensor& x) { return RunConv<2>(conv, x); }
torch::Tensor Conv(torch::nn::Conv1dImpl& conv, const torch::Tensor& x) { return RunConv<1>(conv, x); }

}  // namespace torch_attn::modules
