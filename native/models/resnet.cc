#include "models/resnet.h"

#include <algorithm>

#include "common/errors.h"
#include "modules/batch_norm.h"

namespace torch_attn::models {

namespace {

struct DepthSpec {
  int64_t depth;
  bool bottleneck;
  int64_t blocks[4];
};

constexpr DepthSpec kDepths[] = {
    {18, false, {2, 2, 2, 2}}, {34, false, {3, 4, 6, 3}}, {50, true, {3, 4, 6, 3}},
    {101, true, {3, 4, 23, 3}}, {152, true, {3, 8, 36, 3}},
};

const DepthSpec& SpecFor(int64_t depth) {
  for (const auto& spec : kDepths) {
    if (spec.depth == depth) return spec;
  }
  throw RangeError("ResNet depth must be 18, 34, 50, 101 or 152, got " + std::to_string(depth));
}

torch::nn::Conv2d Conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).bias(false));
}

bool HasStage(const ResNetOptions& o, int64_t stage) {
  return std::find(o.stages().begin(), o.stages().end(), stage) != o.stages().end();
}

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// torchvision's ResNet names: conv1/bn1 the stem, layer1..layer4, fc the head.
std::string TorchvisionGroupOf(const std::string& name) {
  if (StartsWith(name, "conv1.") || StartsWith(name, "bn1.")) return "stem";
  if (StartsWith(name, "layer") && name.size() > 7 && name[6] == '.' && name[5] >= '1' && name[5] <= '4') return name.substr(0, 6);
  if (StartsWith(name, "fc.")) return "head";
  return "";
}

class StageAttentionResNetImpl : public ModelImpl {
 public:
  explicit StageAttentionResNetImpl(const ResNetOptions& options) : options_(options) {
    backbone = register_module("backbone", TorchvisionResNet(options, /*attention_in_blocks=*/false));
    attention.resize(4);
    for (int i = 1; i <= 4; ++i) {
      if (!HasStage(options, i)) continue;
      attention[i - 1] = modules::MakeAttention(options.attention(), backbone->StageChannels(i));
      register_module(options.attention().kind() + "_layer" + std::to_string(i), attention[i - 1]);
    }
  }

  torch::Tensor Forward(const torch::Tensor& input, Trace* trace) override {
    CheckInput(input);
    auto x = backbone->Stem(input, trace, "backbone.");
    for (int i = 1; i <= 4; ++i) {
      x = backbone->Layer(i)->forward(x);
      Record(trace, "backbone.layer" + std::to_string(i), *backbone->Layer(i), x);
      if (attention[i - 1]) {
        x = AttentionForward(*attention[i - 1], x);
        Record(trace, options_.attention().kind() + "_layer" + std::to_string(i), *attention[i - 1], x);
      }
    }
    x = backbone->Head(x);
    Record(trace, "backbone.fc", *backbone->fc, x);
    return x;
  }

  std::string Describe() const override {
    return "ResNet" + std::to_string(options_.depth()) + "-" + options_.attention().kind() + " (stage)";
  }

  std::string GroupOf(const std::string& name) const override {
    return StartsWith(name, "backbone.") ? TorchvisionGroupOf(name.substr(9)) : "";
  }

  TorchvisionResNet backbone{nullptr};
  std::vector<std::shared_ptr<modules::AttentionModule>> attention;

 private:
  ResNetOptions options_;
};

class BlockAttentionResNetImpl : public ModelImpl {
 public:
  explicit BlockAttentionResNetImpl(const ResNetOptions& options) : options_(options) {
    bool in_blocks = options.attention().kind() != "none";
    net_ = std::make_shared<TorchvisionResNetImpl>(options, in_blocks);
    // torchvision's names at the top level: adopt the tree's children instead of nesting it.
    for (const auto& child : net_->named_children()) register_module(child.key(), child.value());
  }

  torch::Tensor Forward(const torch::Tensor& input, Trace* trace) override {
    CheckInput(input);
    auto x = net_->Stem(input, trace, "");
    for (int i = 1; i <= 4; ++i) {
      x = net_->Layer(i)->forward(x);
      Record(trace, "layer" + std::to_string(i), *net_->Layer(i), x);
    }
    x = net_->Head(x);
    Record(trace, "fc", *net_->fc, x);
    return x;
  }

  std::string Describe() const override {
    const auto& kind = options_.attention().kind();
    return "ResNet" + std::to_string(options_.depth()) + (kind == "none" ? "" : "-" + kind + " (block)");
  }

  std::string GroupOf(const std::string& name) const override { return TorchvisionGroupOf(name); }

 private:
  std::shared_ptr<TorchvisionResNetImpl> net_;
  ResNetOptions options_;
};

}  // namespace

ResidualBlockImpl::ResidualBlockImpl(int64_t inplanes, int64_t planes, int64_t stride, bool bottleneck) {
  int64_t expansion = bottleneck ? 4 : 1;
  if (bottleneck) {
    conv1 = register_module("conv1", Conv(inplanes, planes, 1, 1, 0));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", Conv(planes, planes, 3, stride, 1));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
    conv3 = register_module("conv3", Conv(planes, planes * expansion, 1, 1, 0));
    bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes * expansion));
  } else {
    conv1 = register_module("conv1", Conv(inplanes, planes, 3, stride, 1));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
    conv2 = register_module("conv2", Conv(planes, planes, 3, 1, 1));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  }
  if (stride != 1 || inplanes != planes * expansion) {
    downsample = register_module(
        "downsample", torch::nn::Sequential(Conv(inplanes, planes * expansion, 1, stride, 0),
                                            torch::nn::BatchNorm2d(planes * expansion)));
  }
}

void ResidualBlockImpl::AttachAttention(std::shared_ptr<modules::AttentionModule> module) {
  std::string name = module->BlockName();  // before the move: argument order is unspecified
  attention = register_module(name, std::move(module));
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  // In-place ReLU and residual add, as torchvision does: fewer allocations, same autograd.
  auto identity = [&] {
    if (!downsample) return x;
    auto* conv = downsample[0]->as<torch::nn::Conv2dImpl>();
    auto* bn = downsample[1]->as<torch::nn::BatchNorm2dImpl>();
    return ConvBnAct(*conv, bn, /*relu=*/false, x);
  };
  auto out = ConvBnAct(*conv1, bn1.get(), /*relu=*/true, x);
  if (!attention) {
    // The last convolution, the add and the ReLU in one pass under a plan.
    if (conv3) out = ConvBnAct(*conv2, bn2.get(), /*relu=*/true, out);
    return ConvBnAddRelu(conv3 ? *conv3 : *conv2, conv3 ? bn3.get() : bn2.get(), out, identity());
  }
  out = ConvBnAct(*conv2, bn2.get(), /*relu=*/static_cast<bool>(conv3), out);
  if (conv3) out = ConvBnAct(*conv3, bn3.get(), /*relu=*/false, out);
  out = AttentionForward(*attention, out);
  return AddRelu(out, identity());
}

TorchvisionResNetImpl::TorchvisionResNetImpl(const ResNetOptions& options, bool attention_in_blocks)
    : options(options) {
  const DepthSpec& spec = SpecFor(options.depth());
  bool imagenet = options.stem() == "imagenet";
  conv1 = register_module("conv1", imagenet ? Conv(3, 64, 7, 2, 3) : Conv(3, 64, 3, 1, 1));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(64));
  if (imagenet) maxpool = register_module("maxpool", torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));
  int64_t expansion = spec.bottleneck ? 4 : 1;
  int64_t inplanes = 64;
  std::vector<std::vector<ResidualBlock>> blocks(4);
  for (int i = 0; i < 4; ++i) {
    int64_t planes = 64 << i;
    torch::nn::Sequential layer;
    for (int64_t b = 0; b < spec.blocks[i]; ++b) {
      ResidualBlock block(inplanes, planes, (b == 0 && i > 0) ? 2 : 1, spec.bottleneck);
      inplanes = planes * expansion;
      layer->push_back(block);
      blocks[i].push_back(block);
    }
    layers.push_back(register_module("layer" + std::to_string(i + 1), layer));
  }
  fc = register_module("fc", torch::nn::Linear(512 * expansion, options.num_classes()));
  InitLikeTorchvision(*this);
  // Attention after initialisation, so it keeps its own (passthrough stays the identity).
  if (attention_in_blocks) {
    for (int i = 0; i < 4; ++i) {
      if (!HasStage(options, i + 1)) continue;
      for (auto& block : blocks[i]) {
        int64_t channels = (block->bn3 ? block->bn3 : block->bn2)->options.num_features();
        block->AttachAttention(modules::MakeAttention(options.attention(), channels));
      }
    }
  }
}

int64_t TorchvisionResNetImpl::StageChannels(int i) const {
  return (int64_t{64} << (i - 1)) * (SpecFor(options.depth()).bottleneck ? 4 : 1);
}

torch::Tensor TorchvisionResNetImpl::Stem(const torch::Tensor& x, Trace* trace, const std::string& prefix) {
  torch::Tensor out;
  if (trace == nullptr) {
    out = ConvBnAct(*conv1, bn1.get(), /*relu=*/true, x);
  } else {
    out = Conv2dForward(*conv1, x);
    Record(trace, prefix + "conv1", *conv1, out);
    out = modules::BatchNorm(*bn1, out).relu_();
    Record(trace, prefix + "bn1", *bn1, out);
  }
  if (maxpool) {
    out = maxpool->forward(out);
    Record(trace, prefix + "maxpool", *maxpool, out);
  }
  return out;
}

torch::Tensor TorchvisionResNetImpl::Head(const torch::Tensor& x) {
  return fc->forward(torch::flatten(torch::adaptive_avg_pool2d(x, {1, 1}), 1));
}

void ValidateResNet(const ResNetOptions& o) {
  SpecFor(o.depth());
  if (o.num_classes() < 1) throw RangeError("numClasses must be at least 1, got " + std::to_string(o.num_classes()));
  if (o.stem() != "cifar" && o.stem() != "imagenet") {
    throw RangeError("stem must be 'cifar' or 'imagenet', got '" + o.stem() + "'");
  }
  if (o.placement() != "stage" && o.placement() != "block") {
    throw RangeError("placement must be 'stage' or 'block', got '" + o.placement() + "'");
  }
  for (int64_t s : o.stages()) {
    if (s < 1 || s > 4) throw RangeError("stages must list stage numbers from 1 to 4, got " + std::to_string(s));
  }
  int64_t expansion = SpecFor(o.depth()).bottleneck ? 4 : 1;
  for (int i = 1; i <= 4; ++i) modules::ValidateAttention(o.attention(), (int64_t{64} << (i - 1)) * expansion);
}

std::shared_ptr<ModelImpl> MakeResNet(const ResNetOptions& options) {
  ValidateResNet(options);
  if (options.placement() == "stage" && options.attention().kind() != "none") {
    return std::make_shared<StageAttentionResNetImpl>(options);
  }
  return std::make_shared<BlockAttentionResNetImpl>(options);
}

}  // namespace torch_attn::models
