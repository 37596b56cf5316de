#include "training/optimizer.h"

#include <map>

#include <cmath>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "common/errors.h"
#include "common/torch_compat.h"
#include "training/fused_adam.h"

namespace torch_attn::training {

namespace {

std::string Format(double v) {
  std::ostringstream out;
  out << v;  // 1e-05, 0.9, nan: as JS users write them
  return out.str();
}

void CheckRange(double value, double min, double max, const std::string& what, bool max_open = false) {
  if (!std::isfinite(value) || value < min || (max_open ? value >= max : value > max)) {
    throw RangeError(what + " must be " +
                     (std::isinf(max) ? "at least " + Format(min)
                                      : "in [" + Format(min) + ", " + Format(max) + (max_open ? ")" : "]")) +
                     ", got " + Format(value));
  }
}

std::unique_ptr<torch::optim::OptimizerOptions> OptionsFor(const std::string& type, const GroupOptions& g) {
  if (type == "sgd") {
    return std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(g.lr())
                                                          .momentum(g.momentum())
                                                          .dampening(g.dampening())
                                                          .weight_decay(g.weight_decay())
                                                          .nesterov(g.nesterov()));
  }
  auto betas = std::make_tuple(g.beta1(), g.beta2());
  if (type == "adam") {
    return std::make_unique<torch::optim::AdamOptions>(
        torch::optim::AdamOptions(g.lr()).betas(betas).eps(g.eps()).weight_decay(g.weight_decay()).amsgrad(g.amsgrad()));
  }
  return std::make_unique<torch::optim::AdamWOptions>(
      torch::optim::AdamWOptions(g.lr()).betas(betas).eps(g.eps()).weight_decay(g.weight_decay()).amsgrad(g.amsgrad()));
}

std::vector<torch::Tensor> Resolve(const torch::nn::Module& model, const std::vector<std::string>& names,
                                   std::unordered_set<std::string>& taken) {
  auto params = model.named_parameters();
  std::vector<torch::Tensor> out;
  for (const auto& name : names) {
    const torch::Tensor* p = params.find(name);
    if (p == nullptr) throw RangeError("optimizer group names '" + name + "', which is not a parameter of the model");
    if (!taken.insert(name).second) throw RangeError("parameter '" + name + "' is in two optimizer groups; each may be in one");
    out.push_back(*p);
  }
  return out;
}

}  // namespace

void CheckGroupOptions(const std::string& type, const GroupOptions& g) {
  if (type != "sgd" && type != "adam" && type != "adamw") {
    throw RangeError("optimizer type must be 'sgd', 'adam' or 'adamw', got '" + type + "'");
  }
  CheckRange(g.lr(), 0, INFINITY, "lr");
  CheckRange(g.weight_decay(), 0, INFINITY, "weightDecay");
  if (type == "sgd") {
    CheckRange(g.momentum(), 0, INFINITY, "momentum");
    CheckRange(g.dampening(), 0, 1, "dampening");
    if (g.nesterov() && (g.momentum() <= 0 || g.dampening() != 0)) {
      throw RangeError("nesterov needs momentum > 0 and dampening 0");
    }
  } else {
    CheckRange(g.beta1(), 0, 1, "betas[0]", true);
    CheckRange(g.beta2(), 0, 1, "betas[1]", true);
    CheckRange(g.eps(), 0, INFINITY, "eps");
  }
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::string& type, const torch::nn::Module& model,
                                                       const std::vector<GroupOptions>& groups) {
  if (groups.empty()) throw RangeError("an optimizer needs at least one parameter group");
  std::unordered_set<std::string> taken;
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (const auto& g : groups) {
    CheckGroupOptions(type, g);
    param_groups.emplace_back(Resolve(model, g.params(), taken), OptionsFor(type, g));
  }
  if (type == "sgd") {
    return std::make_unique<torch::optim::SGD>(param_groups, torch::optim::SGDOptions(groups.front().lr()));
  }
  const bool fused = FusedAdamAvailable();
  if (type == "adam") {
    if (fused) return std::make_unique<FusedAdam>(param_groups);
    return std::make_unique<torch::optim::Adam>(param_groups);
  }
  if (fused) return std::make_unique<FusedAdamW>(param_groups);
  return std::make_unique<torch::optim::AdamW>(param_groups);
}

void AddGroup(torch::optim::Optimizer& optimizer, const std::string& type, const torch::nn::Module& model,
              const GroupOptions& group) {
  CheckGroupOptions(type, group);
  std::unordered_set<std::string> taken;
  auto params = model.named_parameters();
  for (const auto& g : optimizer.param_groups()) {
    for (const auto& p : g.params()) {
      for (const auto& item : params) {
        if (item.value().is_same(p)) taken.insert(item.key());
      }
    }
  }
  optimizer.add_param_group(torch::optim::OptimizerParamGroup(Resolve(model, group.params(), taken), OptionsFor(type, group)));
}

using compat::StateKey;

std::vector<std::pair<std::string, torch::Tensor>> StateByName(torch::optim::Optimizer& optimizer, const std::string& type,
                                                               const torch::nn::Module& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  auto& state = optimizer.state();
  for (const auto& item : model.named_parameters()) {
    auto it = state.find(StateKey(item.value()));
    if (it == state.end()) continue;
    const std::string& name = item.key();
    auto put = [&](const char* field, const torch::Tensor& t) {
      if (t.defined()) out.emplace_back(name + "." + field, t.detach().to(torch::kCPU).clone());
    };
    if (type == "adam") {
      auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
      put("step", torch::tensor(s.step(), torch::kInt64));
      put("exp_avg", s.exp_avg());
      put("exp_avg_sq", s.exp_avg_sq());
      put("max_exp_avg_sq", s.max_exp_avg_sq());
    } else if (type == "adamw") {
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      put("step", torch::tensor(s.step(), torch::kInt64));
      put("exp_avg", s.exp_avg());
      put("exp_avg_sq", s.exp_avg_sq());
      put("max_exp_avg_sq", s.max_exp_avg_sq());
    } else {
      auto& s = static_cast<torch::optim::SGDParamState&>(*it->second);
      put("momentum_buffer", s.momentum_buffer());
    }
  }
  return out;
}

void LoadStateByName(torch::optim::Optimizer& optimizer, const std::string& type, const torch::nn::Module& model,
                     const std::vector<std::pair<std::string, torch::Tensor>>& state) {
  std::map<std::string, std::map<std::string, torch::Tensor>> by_param;
  auto params = model.named_parameters();
  for (const auto& [key, tensor] : state) {
    const auto dot = key.rfind('.');
    if (dot == std::string::npos || !params.contains(key.substr(0, dot))) {
      throw CheckpointError("optimizer state names '" + key + "', which is not a parameter of this model");
    }
    by_param[key.substr(0, dot)][key.substr(dot + 1)] = tensor;
  }
  auto& target = optimizer.state();
  target.clear();
  for (const auto& entry : by_param) {
    const std::string& name = entry.first;
    const auto& fields = entry.second;
    const torch::Tensor& p = params[name];
    auto get = [&](const char* field) -> torch::Tensor {
      auto it = fields.find(field);
      if (it == fields.end()) return {};
      if (std::string(field) != "step" && it->second.sizes() != p.sizes()) {
        throw CheckpointError("optimizer state '" + name + "." + field + "' has shape " + c10::str(it->second.sizes()) +
                              ", the parameter " + c10::str(p.sizes()));
      }
      return it->second.to(p.device(), it->second.scalar_type() == torch::kInt64 ? torch::kInt64 : p.scalar_type());
    };
    if (type == "adam" || type == "adamw") {
      auto step = get("step");
      auto exp_avg = get("exp_avg"), exp_avg_sq = get("exp_avg_sq");
      if (!step.defined() || !exp_avg.defined() || !exp_avg_sq.defined()) {
        throw CheckpointError("optimizer state of '" + name + "' lacks step, exp_avg or exp_avg_sq (was it saved by SGD?)");
      }
      if (type == "adam") {
        auto s = std::make_unique<torch::optim::AdamParamState>();
        s->step(step.item<int64_t>()).exp_avg(exp_avg).exp_avg_sq(exp_avg_sq).max_exp_avg_sq(get("max_exp_avg_sq"));
        target[StateKey(p)] = std::move(s);
      } else {
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        s->step(step.item<int64_t>()).exp_avg(exp_avg).exp_avg_sq(exp_avg_sq).max_exp_avg_sq(get("max_exp_avg_sq"));
        target[StateKey(p)] = std::move(s);
      }
    } else {
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(get("momentum_buffer"));
      target[StateKey(p)] = std::move(s);
    }
  }
}

}  // namespace torch_attn::training
