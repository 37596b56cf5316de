#include "training/optimizer.h"

#include <cmath>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "common/errors.h"

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
  if (type == "adam") return std::make_unique<torch::optim::Adam>(param_groups);
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

}  // namespace torch_attn::training
