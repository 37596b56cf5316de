#include "training/fused_adam.h"

// GCC 12 warns about the undefined vector inside its own masked-load intrinsics once they are
// inlined here (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <cmath>

#include "common/torch_compat.h"
#include "runtime/fast_paths.h"

namespace torch_attn::training {

namespace {

// One step's scalars, converted to float where LibTorch's kernels convert them (a Scalar
// argument becomes the tensor's dtype).
struct Coefficients {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float sqrt_bias_correction2, eps, neg_step_size;
  bool grad_decay;     // Adam: grad.add(p, weight_decay)
  float weight_decay;
  bool param_decay;    // AdamW: p.mul_(1 - lr * weight_decay)
  float decay_factor;
  bool amsgrad;
};

// The kernel spells out each of LibTorch's operations as its vectorised kernels compute them:
// add(self, other, alpha) as fmadd(other, alpha, self); addcmul as self + value * t1 * t2, which
// LibTorch's build contracts into fmadd(value * t1, t2, self) (the only form that gives its
// bits); addcdiv as self + value * t1 / t2. Contraction is off here, so the compiler fuses
// nothing else.
#define TA_AVX512 __attribute__((target("avx512f"), optimize("fp-contract=off")))

TA_AVX512 void Update512(float* p, const float* g, float* m, float* v, float* vmax, int64_t begin, int64_t end,
                         const Coefficients& c) {
  const __m512 beta1 = _mm512_set1_ps(c.beta1), one_minus_beta1 = _mm512_set1_ps(c.one_minus_beta1);
  const __m512 beta2 = _mm512_set1_ps(c.beta2), one_minus_beta2 = _mm512_set1_ps(c.one_minus_beta2);
  const __m512 sqrt_bc2 = _mm512_set1_ps(c.sqrt_bias_correction2), eps = _mm512_set1_ps(c.eps);
  const __m512 neg_step = _mm512_set1_ps(c.neg_step_size);
  const __m512 weight_decay = _mm512_set1_ps(c.weight_decay), decay_factor = _mm512_set1_ps(c.decay_factor);
  for (int64_t i = begin; i < end; i += 16) {
    const __mmask16 k = end - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (end - i)) - 1);
    __m512 pv = _mm512_maskz_loadu_ps(k, p + i);
    __m512 gv = _mm512_maskz_loadu_ps(k, g + i);
    if (c.grad_decay) gv = _mm512_fmadd_ps(pv, weight_decay, gv);
    if (c.param_decay) pv = _mm512_mul_ps(pv, decay_factor);
    // exp_avg.mul_(beta1).add_(grad, 1 - beta1)
    const __m512 mv = _mm512_fmadd_ps(gv, one_minus_beta1, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, m + i), beta1));
    // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
    const __m512 vv = _mm512_fmadd_ps(_mm512_mul_ps(one_minus_beta2, gv), gv, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, v + i), beta2));
    _mm512_mask_storeu_ps(m + i, k, mv);
    _mm512_mask_storeu_ps(v + i, k, vv);
    __m512 second = vv;
    if (c.amsgrad) {
      // torch::max_out(max_exp_avg_sq, exp_avg_sq, max_exp_avg_sq): a NaN on either side wins
      const __m512 old = _mm512_maskz_loadu_ps(k, vmax + i);
      const __mmask16 nan = _mm512_cmp_ps_mask(vv, old, _CMP_UNORD_Q);
      second = _mm512_mask_blend_ps(nan, _mm512_max_ps(vv, old), _mm512_add_ps(vv, old));
      _mm512_mask_storeu_ps(vmax + i, k, second);
    }
    // denom = (second.sqrt() / sqrt(bias_correction2)).add_(eps); p.addcdiv_(exp_avg, denom, -step_size)
    const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(second), sqrt_bc2), eps);
    _mm512_mask_storeu_ps(p + i, k, _mm512_add_ps(pv, _mm512_div_ps(_mm512_mul_ps(neg_step, mv), denom)));
  }
}

bool Dense(const torch::Tensor& t, const torch::Tensor& like) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.strides() == like.strides() &&
         t.sizes() == like.sizes();
}

// Whether every parameter with a gradient (and its state, where there is some) can take the
// fused pass; otherwise the whole step is LibTorch's.
template <typename State>
bool FusedApplies(const std::vector<torch::optim::OptimizerParamGroup>& groups, const compat::OptimizerState& states) {
  for (const auto& group : groups) {
    for (const auto& p : group.params()) {
      const auto& grad = p.grad();
      if (!grad.defined()) continue;
      if (!Dense(p, p) || !p.is_non_overlapping_and_dense() || grad.is_sparse() || !Dense(grad, p)) return false;
      auto it = states.find(compat::StateKey(p));
      if (it == states.end()) continue;
      const auto& s = static_cast<const State&>(*it->second);
      if (!Dense(s.exp_avg(), p) || !Dense(s.exp_avg_sq(), p)) return false;
      if (s.max_exp_avg_sq().defined() && !Dense(s.max_exp_avg_sq(), p)) return false;
    }
  }
  return true;
}

// Adam (decoupled = false) or AdamW (true): LibTorch's step, state creation included, with the
// arithmetic in Update512.
template <typename State, typename Options>
torch::Tensor FusedStep(std::vector<torch::optim::OptimizerParamGroup>& groups, compat::OptimizerState& states,
                        const torch::optim::Optimizer::LossClosure& closure, bool decoupled) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : groups) {
    auto& options = static_cast<Options&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto key = compat::StateKey(p);
      auto it = states.find(key);
      if (it == states.end()) {
        auto fresh = std::make_unique<State>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        if (options.amsgrad()) fresh->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        it = states.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<State&>(*it->second);
      if (options.amsgrad() && !state.max_exp_avg_sq().defined()) {
        state.max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
      }
      state.step(state.step() + 1);
      const double beta1 = std::get<0>(options.betas()), beta2 = std::get<1>(options.betas());
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      Coefficients c{};
      c.beta1 = static_cast<float>(beta1);
      c.one_minus_beta1 = static_cast<float>(1 - beta1);
      c.beta2 = static_cast<float>(beta2);
      c.one_minus_beta2 = static_cast<float>(1 - beta2);
      c.sqrt_bias_correction2 = static_cast<float>(std::sqrt(bias_correction2));
      c.eps = static_cast<float>(options.eps());
      c.neg_step_size = static_cast<float>(-(options.lr() / bias_correction1));
      c.grad_decay = !decoupled && options.weight_decay() != 0;
      c.weight_decay = static_cast<float>(options.weight_decay());
      c.param_decay = decoupled && options.weight_decay() != 0;
      c.decay_factor = static_cast<float>(1 - options.lr() * options.weight_decay());
      c.amsgrad = options.amsgrad();
      float* pd = p.data_ptr<float>();
      const float* gd = p.grad().data_ptr<float>();
      float* md = state.exp_avg().template data_ptr<float>();
      float* vd = state.exp_avg_sq().template data_ptr<float>();
      float* xd = c.amsgrad ? state.max_exp_avg_sq().template data_ptr<float>() : nullptr;
      at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) { Update512(pd, gd, md, vd, xd, begin, end, c); });
    }
  }
  return loss;
}

}  // namespace

bool FusedAdamAvailable() {
  return runtime::CpuHasAvx512() && !runtime::SwitchedOff("TORCH_ATTN_FUSED_OPTIMIZER");
}

bool IsFused(const torch::optim::Optimizer& optimizer) {
  return dynamic_cast<const FusedAdam*>(&optimizer) != nullptr || dynamic_cast<const FusedAdamW*>(&optimizer) != nullptr;
}

torch::Tensor FusedAdam::step(LossClosure closure) {
  if (!FusedApplies<torch::optim::AdamParamState>(param_groups_, state_)) return Adam::step(closure);
  return FusedStep<torch::optim::AdamParamState, torch::optim::AdamOptions>(param_groups_, state_, closure, false);
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  if (!FusedApplies<torch::optim::AdamWParamState>(param_groups_, state_)) return AdamW::step(closure);
  return FusedStep<torch::optim::AdamWParamState, torch::optim::AdamWOptions>(param_groups_, state_, closure, true);
}

}  // namespace torch_attn::training
