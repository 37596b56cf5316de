#include "modules/batch_norm.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <memory>
#include <string>
#include <utility>

#include "common/errors.h"

namespace torch_attn::modules {

namespace {

thread_local const SumOverRanks* active_sum = nullptr;

// PyTorch's SyncBatchNorm backward, on ATen's CPU and CUDA kernels: this rank's sums of dy and of
// dy * (x - mean) per channel (one fused pass, native_batch_norm_backward's weight and bias
// gradients), summed over the ranks, give every rank the input gradient of the global
// normalisation; the weight and bias gradients stay this rank's (DDP averages them).
class SyncBatchNormBackward : public torch::autograd::Node {
 public:
  SyncBatchNormBackward(SumOverRanks sum, const torch::Tensor& x, const torch::Tensor& weight, torch::Tensor mean, torch::Tensor invstd,
                        double total, double eps)
      : sum_(std::move(sum)), x_(x, /*is_output=*/false), mean_(std::move(mean)), invstd_(std::move(invstd)), total_(total), eps_(eps) {
    if (weight.defined()) weight_ = torch::autograd::SavedVariable(weight, /*is_output=*/false);
  }
  std::string name() const override { return "SyncBatchNormBackward"; }
  void release_variables() override {
    x_.reset_data();
    weight_.reset_data();
  }

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    torch::autograd::variable_list out(3);
    const auto& dy = grads.at(0);
    if (!dy.defined()) return out;
    const auto x = x_.unpack();
    auto weight = weight_.unpack();
    if (!weight.defined()) weight = torch::ones_like(mean_);
    // grad_weight = sum(dy * (x - mean)) * invstd, grad_bias = sum(dy), over this rank's batch.
    auto [ignored, grad_weight, grad_bias] =
        at::native_batch_norm_backward(dy, x, weight, {}, {}, mean_, invstd_, /*train=*/true, eps_, {false, true, true});
    auto sums = torch::stack({grad_bias, grad_weight / invstd_}).to(torch::kDouble);
    sum_(sums);
    // dx = w invstd (dy - mean(dy) - (x - mean) invstd^2 mean(dy (x - mean))), means over all ranks.
    // (x - mean) formed first: a * x - a * mean cancels where the mean is large against the spread.
    auto a = weight.to(torch::kDouble) * invstd_.to(torch::kDouble);
    auto b = -a * invstd_.to(torch::kDouble).square() * sums[1] / total_;
    auto c = -a * sums[0] / total_;
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[1] = x.size(1);
    auto view = [&](const torch::Tensor& t) { return t.to(x.scalar_type()).view(shape); };
    if (should_compute_output(0)) out[0] = at::addcmul(at::addcmul(view(c), x - view(mean_), view(b)), dy, view(a));
    if (should_compute_output(1)) out[1] = grad_weight;
    if (should_compute_output(2)) out[2] = grad_bias;
    return out;
  }

 private:
  SumOverRanks sum_;
  torch::autograd::SavedVariable x_, weight_;
  torch::Tensor mean_, invstd_;  // over all ranks, float
  double total_, eps_;
};

}  // namespace

SyncBatchNormScope::SyncBatchNormScope(SumOverRanks sum) : previous_(active_sum), sum_(std::move(sum)) { active_sum = &sum_; }
SyncBatchNormScope::~SyncBatchNormScope() { active_sum = previous_; }

const SumOverRanks* ActiveSyncBatchNorm() { return active_sum; }

torch::Tensor SyncBatchNormForward(const torch::Tensor& x, const torch::nn::BatchNormOptions& options, const torch::Tensor& weight,
                                   const torch::Tensor& bias, torch::Tensor& running_mean, torch::Tensor& running_var,
                                   torch::Tensor& num_batches_tracked, const SumOverRanks& sum) {
  // Statistics in fp32 whatever the compute precision (autocast keeps BatchNorm in fp32 too).
  const auto xf = x.scalar_type() == torch::kFloat ? x : x.to(torch::kFloat);
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < xf.dim(); ++d) dims.push_back(d);
  const int64_t channels = xf.size(1);
  const double count = static_cast<double>(xf.numel() / std::max<int64_t>(channels, 1));
  torch::Tensor global_mean, global_var, total_tensor;
  {
    torch::NoGradGuard no_grad;
    // This rank's count, sum and sum of squares per channel, from its own (stable) mean and
    // variance, summed over the ranks in float64 so that E[x^2] - E[x]^2 loses nothing.
    auto [var, mean] = at::var_mean(xf, dims, /*unbiased=*/false, /*keepdim=*/false);
    auto mean64 = mean.to(torch::kDouble), var64 = var.to(torch::kDouble);
    auto stats = torch::stack({torch::full_like(mean64, count), mean64 * count, (var64 + mean64 * mean64) * count});
    sum(stats);
    total_tensor = stats[0][0];
    global_mean = stats[1] / stats[0];
    global_var = (stats[2] / stats[0] - global_mean * global_mean).clamp_min(0);
  }
  const double total = total_tensor.item<double>();
  if (total <= 1) {
    throw RangeError("BatchNorm needs more than 1 value per channel when training, got input size " + c10::str(x.sizes()) +
                     " over all ranks");
  }
  const auto mean_f = global_mean.to(torch::kFloat), var_f = global_var.to(torch::kFloat);
  const auto invstd = (global_var + options.eps()).rsqrt().to(torch::kFloat);
  torch::Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;  // this function records its own backward
    y = std::get<0>(at::native_batch_norm(xf, weight, bias, mean_f, var_f, /*training=*/false, 0.0, options.eps()));
  }
  if (torch::autograd::compute_requires_grad(xf, weight, bias)) {
    auto node = std::shared_ptr<SyncBatchNormBackward>(new SyncBatchNormBackward(sum, xf, weight, mean_f, invstd, total, options.eps()),
                                                       torch::autograd::deleteNode);
    node->set_next_edges(torch::autograd::collect_next_edges(xf, weight, bias));
    torch::autograd::set_history(y, node);
  }

  if (options.track_running_stats() && running_mean.defined()) {
    torch::NoGradGuard no_grad;
    double factor = options.momentum().value_or(0.0);
    if (num_batches_tracked.defined()) {
      num_batches_tracked += 1;
      if (!options.momentum().has_value()) factor = 1.0 / num_batches_tracked.item<double>();
    }
    running_mean.mul_(1 - factor).add_(mean_f.to(running_mean.scalar_type()), factor);
    running_var.mul_(1 - factor).add_((global_var * (total / (total - 1))).to(running_var.scalar_type()), factor);
  }
  return x.scalar_type() == torch::kFloat ? y : y.to(x.scalar_type());
}

}  // namespace torch_attn::modules
