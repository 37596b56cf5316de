// Reads the state dicts PyTorch users have: torch.save(model.state_dict(), path) zip files. A
// restricted reader, not an unpickler: only tensors, dicts, lists, tuples, strings and numbers
// are built, and any global outside a short allow-list is refused, so loading never runs code.
#pragma once

#include <ATen/ATen.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/errors.h"

namespace torch_attn::models {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The tensors of the state dict in `path`, in file order. A training checkpoint whose top-level
// dict holds the state dict under 'state_dict', 'model_state_dict' or 'model' is accepted too.
NamedTensors ReadPth(const std::string& path);

// The same from bytes already in memory (`name` is used in messages).
NamedTensors ReadPthBytes(const std::string& bytes, const std::string& name);

// A checkpoint whose top-level dict maps section names to dicts of tensors (torch-attn's
// training checkpoints: model_state_dict, optimizer_state, training), section by section.
std::vector<std::pair<std::string, NamedTensors>> ReadPthSections(const std::string& path);
std::vector<std::pair<std::string, NamedTensors>> ReadPthSectionsBytes(const std::string& bytes, const std::string& name);

}  // namespace torch_attn::models
