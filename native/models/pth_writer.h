// Writes .pth files exactly as torch.save writes a state dict: a zip archive (LibTorch's own
// PyTorchStreamWriter, as torch.save uses) with data.pkl, byteorder, data/<key> and version,
// where data.pkl is a protocol-2 pickle of an OrderedDict of torch._utils._rebuild_tensor_v2
// records over torch.<Type>Storage persistent ids. Every PyTorch loads these with its default
// settings, the safe loader (torch.load(f, weights_only=True), the default from 2.6) included.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "models/pth_reader.h"

namespace torch_attn::models {

// The bytes of a .pth file holding `tensors` as an OrderedDict, in order. CPU copies are
// saved; CheckpointError for a name given twice or a dtype a .pth file cannot hold.
std::vector<char> EncodePth(const NamedTensors& tensors);

// The same for a dict of named sections, each an OrderedDict of tensors (a training checkpoint).
std::vector<char> EncodePthSections(const std::vector<std::pair<std::string, NamedTensors>>& sections);

}  // namespace torch_attn::models
