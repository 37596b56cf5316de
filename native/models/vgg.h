// VGG 11/13/16/19 (Simonyan & Zisserman, ICLR 2015) in torchvision's layout (features.N,
// classifier.N), optional BatchNorm, with attention after each conv stage's max-pool, and
// CBAMCNN, the small three-block CNN with CBAM after each block.
#pragma once

#include "models/model.h"
#include "modules/attention.h"

namespace torch_attn::models {

struct VggOptions {
  TORCH_ARG(int64_t, depth) = 16;  // 11 | 13 | 16 | 19
  TORCH_ARG(bool, batch_norm) = true;
  TORCH_ARG(int64_t, num_classes) = 10;
  // imagenet: torchvision's head (7x7 average pool, 25088 -> 4096 -> 4096 -> classes);
  // cifar: 1x1 pool and 512 -> 512 -> 512 -> classes, same layer indices.
  TORCH_ARG(std::string, stem) = "cifar";
  TORCH_ARG(modules::AttentionOptions, attention);
};

std::shared_ptr<ModelImpl> MakeVgg(const VggOptions& options);

struct CbamCnnOptions {
  TORCH_ARG(int64_t, num_classes) = 10;
  TORCH_ARG(modules::AttentionOptions, attention);  // kind cbam; ratio, kernelSize, passthrough
};

std::shared_ptr<ModelImpl> MakeCbamCnn(const CbamCnnOptions& options);

}  // namespace torch_attn::models
