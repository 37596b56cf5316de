// State dicts: a model's parameters and buffers by PyTorch name, and loading named tensors
// into a model with missing / unexpected / shape-mismatched keys reported.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/pth_reader.h"

namespace torch_attn::models {

struct ShapeMismatch {
  std::string name;
  std::vector<int64_t> expected, got;
};

struct LoadReport {
  std::vector<std::string> missing, unexpected;
  std::vector<ShapeMismatch> mismatched;
  bool clean() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
};

// Parameters then buffers, each in registration order, as independent copies.
NamedTensors StateDict(const torch::nn::Module& model);

// Copies every tensor whose name and shape match (converting dtype and device as needed).
// Mismatched shapes are never loaded. With strict, anything missing, unexpected or mismatched
// throws CheckpointError and nothing is loaded.
LoadReport LoadStateDict(torch::nn::Module& model, const NamedTensors& tensors, bool strict);

// Reads the checkpoint at `path` (see pth_reader.h) and loads it as LoadStateDict does.
LoadReport LoadStateDictFrom(torch::nn::Module& model, const std::string& path, bool strict);

}  // namespace torch_attn::models
