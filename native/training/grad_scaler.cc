#include "training/grad_scaler.h"

#include <cmath>

#include "common/errors.h"

namespace torch_attn::training {

GradScaler::GradScaler(const ScalerOptions& options) : options_(options) {
  if (!std::isfinite(options.init_scale()) || options.init_scale() <= 0) throw RangeError("loss scaling: initScale must be a positive number");
  if (!(options.growth_factor() > 1) || !std::isfinite(options.growth_factor())) throw RangeError("loss scaling: growthFactor must be above 1");
  if (!(options.backoff_factor() > 0 && options.backoff_factor() < 1)) throw RangeError("loss scaling: backoffFactor must be between 0 and 1");
  if (options.growth_interval() < 1) throw RangeError("loss scaling: growthInterval must be at least 1");
  state_.scale = options.init_scale();
}

std::vector<torch::Tensor> GradScaler::GradsOf(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  return grads;
}

bool GradScaler::Unscale(const std::vector<torch::Tensor>& grads) const {
  torch::NoGradGuard no_grad;
  const double inv = 1.0 / state_.scale;
  std::vector<torch::Tensor> cuda;
  bool found = false;
  for (const auto& g : grads) {
    if (g.is_cuda()) {
      cuda.push_back(g);
      continue;
    }
    found = found || !torch::isfinite(g).all().item<bool>();
    g.mul_(inv);
  }
  if (!cuda.empty()) {
    const auto options = torch::TensorOptions().device(cuda.front().device()).dtype(torch::kFloat);
    auto found_inf = torch::zeros({1}, options);
    at::_amp_foreach_non_finite_check_and_unscale_(cuda, found_inf, torch::full({1}, inv, options));
    found = found || found_inf.item<float>() != 0;
  }
  return found;
}

void GradScaler::Update(bool found_inf) {
  if (found_inf) {
    state_.scale *= options_.backoff_factor();
    state_.growth_tracker = 0;
    return;
  }
  if (++state_.growth_tracker == options_.growth_interval()) {
    const double grown = state_.scale * options_.growth_factor();
    if (std::isfinite(grown)) state_.scale = grown;  // as _amp_update_scale_: never to inf
    state_.growth_tracker = 0;
  }
}

void GradScaler::set_state(const ScalerState& state) {
  if (!std::isfinite(state.scale) || state.scale <= 0 || state.growth_tracker < 0) {
    throw RangeError("loss scaling: a scale must be positive and finite and a growth count non-negative");
  }
  state_ = state;
}

}  // namespace torch_attn::training
