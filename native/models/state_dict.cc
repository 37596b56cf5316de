#include "models/state_dict.h"

#include "models/model.h"

#include <torch/csrc/jit/serialization/pickle.h>

#include <unordered_map>

namespace torch_attn::models {

namespace {

std::string ListSome(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 5; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 5) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

}  // namespace

NamedTensors StateDict(const torch::nn::Module& model) {
  NamedTensors out;
  for (const auto& p : model.named_parameters()) out.emplace_back(p.key(), p.value().detach().clone());
  for (const auto& b : model.named_buffers()) out.emplace_back(b.key(), b.value().detach().clone());
  return out;
}

LoadReport LoadStateDict(torch::nn::Module& model, const NamedTensors& tensors, bool strict) {
  std::unordered_map<std::string, const at::Tensor*> given;
  for (const auto& [name, tensor] : tensors) {
    if (!given.emplace(name, &tensor).second) throw CheckpointError("the state dict names '" + name + "' twice");
  }
  std::vector<std::pair<at::Tensor, const at::Tensor*>> plan;
  LoadReport report;
  std::unordered_map<std::string, bool> known;
  auto consider = [&](const std::string& name, at::Tensor target) {
    known[name] = true;
    auto it = given.find(name);
    if (it == given.end()) {
      report.missing.push_back(name);
    } else if (it->second->sizes() != target.sizes()) {
      report.mismatched.push_back({name, target.sizes().vec(), it->second->sizes().vec()});
    } else {
      plan.emplace_back(target, it->second);
    }
  };
  for (const auto& p : model.named_parameters()) consider(p.key(), p.value());
  for (const auto& b : model.named_buffers()) consider(b.key(), b.value());
  for (const auto& [name, _] : tensors) {
    if (!known.count(name)) report.unexpected.push_back(name);
  }
  if (strict && !report.clean()) {
    std::string msg = "the state dict does not match the model (strict load; nothing was loaded):";
    if (!report.missing.empty()) msg += "\n  missing: " + ListSome(report.missing);
    if (!report.unexpected.empty()) msg += "\n  unexpected: " + ListSome(report.unexpected);
    if (!report.mismatched.empty()) {
      const auto& m = report.mismatched.front();
      msg += "\n  shape mismatch: " + m.name + " is " + c10::str(c10::IntArrayRef(m.expected)) + " in the model, " +
             c10::str(c10::IntArrayRef(m.got)) + " in the file" +
             (report.mismatched.size() > 1 ? " (and " + std::to_string(report.mismatched.size() - 1) + " more)" : "");
    }
    throw CheckpointError(msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& [target, source] : plan) target.copy_(*source);
  // The version counters tell plans already; a model's generation says it outright.
  if (auto* m = dynamic_cast<ModelImpl*>(&model)) m->plans().Invalidate();
  return report;
}

LoadReport LoadStateDictFrom(torch::nn::Module& model, const std::string& path, bool strict) {
  return LoadStateDict(model, ReadPth(path), strict);
}

}  // namespace torch_attn::models
