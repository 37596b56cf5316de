// The architecture factory: one spec (what the TypeScript builders produce, read by the wrap
// layer) to a model of any architecture torch-attn builds.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/model.h"
#include "modules/attention.h"

namespace torch_attn::models {

struct ModelSpec {
  TORCH_ARG(std::string, arch);  // resnet | vgg | cbamcnn | attention
  TORCH_ARG(int64_t, num_classes) = 10;
  TORCH_ARG(std::optional<int64_t>, depth);  // default: ResNet 18, VGG 16
  TORCH_ARG(std::string, stem) = "cifar";
  TORCH_ARG(std::string, placement) = "stage";  // resnet
  TORCH_ARG(bool, batch_norm) = true;           // vgg
  TORCH_ARG(std::optional<std::vector<int64_t>>, stages);  // resnet: stages with attention
  TORCH_ARG(int64_t, channels) = 0;             // attention: input channels
  TORCH_ARG(modules::AttentionOptions, attention);
};

// RangeError for an unknown architecture or options it cannot take.
std::shared_ptr<ModelImpl> MakeModel(const ModelSpec& spec);

}  // namespace torch_attn::models
