// Dynamic loss scaling for float16 training, PyTorch's GradScaler semantics: the loss is
// multiplied by the scale before backward; the gradients are divided by it before the step,
// which is skipped when any of them is inf or NaN; the scale then backs off (x0.5), or grows
// (x2) after `growth_interval` steps in a row without one.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace torch_attn::training {

struct ScalerOptions {
  TORCH_ARG(double, init_scale) = 65536.0;
  TORCH_ARG(double, growth_factor) = 2.0;
  TORCH_ARG(double, backoff_factor) = 0.5;
  TORCH_ARG(int64_t, growth_interval) = 2000;
};

// What a checkpoint keeps of a scaler, so a resumed run scales exactly as the run it continues.
struct ScalerState {
  double scale = 65536.0;
  int64_t growth_tracker = 0;  // steps in a row without inf/NaN gradients
};

class GradScaler {
 public:
  // RangeError for a scale or factors outside what PyTorch allows.
  explicit GradScaler(const ScalerOptions& options = {});

  torch::Tensor Scale(const torch::Tensor& loss) const { return loss * state_.scale; }
  // Divides every gradient in `grads` by the scale, in place; true when any holds inf or NaN
  // (the step must then be skipped). CUDA gradients go through PyTorch's fused kernel; others
  // (LibTorch 1.13 has no CPU kernel for it) through the same arithmetic per tensor.
  bool Unscale(const std::vector<torch::Tensor>& grads) const;
  // The defined gradients of `params`.
  static std::vector<torch::Tensor> GradsOf(const std::vector<torch::Tensor>& params);
  // After each step: back off on inf/NaN, else count the step and grow every growth_interval.
  void Update(bool found_inf);

  const ScalerState& state() const { return state_; }
  // RangeError for a state no scaler can be in (non-finite or non-positive scale, negative count).
  void set_state(const ScalerState& state);
  const ScalerOptions& options() const { return options_; }

 private:
  ScalerOptions options_;
  ScalerState state_;
};

}  // namespace torch_attn::training
