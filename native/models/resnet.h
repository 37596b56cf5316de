// ResNet 18-152 (He et al., CVPR 2016) with torchvision's module names, a CIFAR or ImageNet
// stem, and attention either after each stage (under `backbone.`) or inside every block.
#pragma once

#include "models/model.h"
#include "modules/attention.h"

namespace torch_attn::models {

struct ResNetOptions {
  TORCH_ARG(int64_t, depth) = 18;          // 18 | 34 | 50 | 101 | 152
  TORCH_ARG(int64_t, num_classes) = 10;
  TORCH_ARG(std::string, stem) = "cifar";  // cifar: 3x3 stride 1, no max-pool; imagenet: 7x7/2 + max-pool
  TORCH_ARG(modules::AttentionOptions, attention);
  TORCH_ARG(std::string, placement) = "stage";  // stage | block
  TORCH_ARG(std::vector<int64_t>, stages) = std::vector<int64_t>({1, 2, 3, 4});
};

// One residual block, BasicBlock or Bottleneck, registered as torchvision does (conv1, bn1,
// conv2, bn2, [conv3, bn3], downsample) plus the attention module (`nam`, `cbam`, ...) applied
// after the last BatchNorm, before the residual add.
class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, bool bottleneck);
  void AttachAttention(std::shared_ptr<modules::AttentionModule> attention);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
  std::shared_ptr<modules::AttentionModule> attention;
};
TORCH_MODULE(ResidualBlock);

// torchvision's ResNet tree: conv1, bn1, layer1..layer4, fc.
class TorchvisionResNetImpl : public torch::nn::Module {
 public:
  TorchvisionResNetImpl(const ResNetOptions& options, bool attention_in_blocks);
  // conv1 -> bn1 -> ReLU [-> max-pool], recording each step under `prefix` when tracing.
  torch::Tensor Stem(const torch::Tensor& x, Trace* trace, const std::string& prefix);
  torch::nn::Sequential& Layer(int i) { return layers[i - 1]; }
  torch::Tensor Head(const torch::Tensor& x);
  int64_t StageChannels(int i) const;

  ResNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::MaxPool2d maxpool{nullptr};
  std::vector<torch::nn::Sequential> layers;
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(TorchvisionResNet);

// Throws RangeError for an unsupported depth, class count, stem, placement or stage list.
void ValidateResNet(const ResNetOptions& options);

// The model: with stage placement the torchvision tree sits under `backbone.` and the attention
// modules are `<kind>_layer1..4`; otherwise the tree is at the top level (torchvision's names).
std::shared_ptr<ModelImpl> MakeResNet(const ResNetOptions& options);

}  // namespace torch_attn::models
