// Optimizers over named parameter groups (SGD, Adam, AdamW: LibTorch's own implementations,
// which follow PyTorch's update rules step for step), each group with its own options.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace torch_attn::training {

struct GroupOptions {
  TORCH_ARG(std::vector<std::string>, params);  // parameter names, resolved by the TS layer
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(double, momentum) = 0;   // sgd
  TORCH_ARG(double, dampening) = 0;  // sgd
  TORCH_ARG(bool, nesterov) = false; // sgd
  TORCH_ARG(double, beta1) = 0.9;    // adam, adamw
  TORCH_ARG(double, beta2) = 0.999;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(bool, amsgrad) = false;
};

// Throws RangeError for an unknown type, unknown or repeated parameter names, and options
// outside what the optimizer allows (negative lr, momentum, betas outside [0, 1), ...).
std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(const std::string& type, const torch::nn::Module& model,
                                                       const std::vector<GroupOptions>& groups);

// Adds a group to a live optimizer (its names must be in no other group).
void AddGroup(torch::optim::Optimizer& optimizer, const std::string& type, const torch::nn::Module& model,
              const GroupOptions& group);

// The optimizer's per-parameter state (Adam/AdamW: step, exp_avg, exp_avg_sq[, max_exp_avg_sq];
// SGD: momentum_buffer) keyed "<parameter name>.<field>", so a checkpoint survives any change
// of group layout and reads naturally.
std::vector<std::pair<std::string, torch::Tensor>> StateByName(torch::optim::Optimizer& optimizer, const std::string& type,
                                                               const torch::nn::Module& model);
// Restores state written by StateByName (entries of parameters the model lacks: CheckpointError).
void LoadStateByName(torch::optim::Optimizer& optimizer, const std::string& type, const torch::nn::Module& model,
                     const std::vector<std::pair<std::string, torch::Tensor>>& state);

void CheckGroupOptions(const std::string& type, const GroupOptions& group);

}  // namespace torch_attn::training
