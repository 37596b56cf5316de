#include "models/vgg.h"

#include "common/errors.h"

namespace torch_attn::models {

namespace {

// torchvision's classifier, its layers made one after the other as PyTorch makes them (the order
// of a call's arguments is unspecified in C++, and each Linear draws its initial weights).
torch::nn::Sequential MakeClassifier(int64_t in, int64_t hidden, int64_t classes) {
  torch::nn::Linear first(in, hidden);
  torch::nn::Linear second(hidden, hidden);
  torch::nn::Linear last(hidden, classes);
  return torch::nn::Sequential(first, torch::nn::ReLU(true), torch::nn::Dropout(0.5), second, torch::nn::ReLU(true),
                               torch::nn::Dropout(0.5), last);
}

}  // namespace

namespace {

constexpr int64_t kPool = 0;  // 'M' in torchvision's configuration lists

std::vector<int64_t> Config(int64_t depth) {
  switch (depth) {
    case 11: return {64, kPool, 128, kPool, 256, 256, kPool, 512, 512, kPool, 512, 512, kPool};
    case 13: return {64, 64, kPool, 128, 128, kPool, 256, 256, kPool, 512, 512, kPool, 512, 512, kPool};
    case 16: return {64, 64, kPool, 128, 128, kPool, 256, 256, 256, kPool, 512, 512, 512, kPool, 512, 512, 512, kPool};
    case 19:
      return {64, 64, kPool, 128, 128, kPool, 256, 256, 256, 256, kPool,
              512, 512, 512, 512, kPool, 512, 512, 512, 512, kPool};
    default: throw RangeError("VGG depth must be 11, 13, 16 or 19, got " + std::to_string(depth));
  }
}

class VggImpl : public ModelImpl {
 public:
  explicit VggImpl(const VggOptions& options) : options_(options) {
    features = torch::nn::Sequential();
    int64_t in = 3;
    std::vector<int64_t> stage_channels;
    for (int64_t v : Config(options.depth())) {
      const int64_t stage = static_cast<int64_t>(stage_channels.size()) + 1;
      if (v == kPool) {
        features->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
        feature_stage_.push_back(stage);
        stage_channels.push_back(in);
        continue;
      }
      features->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, v, 3).padding(1)));
      if (options.batch_norm()) features->push_back(torch::nn::BatchNorm2d(v));
      features->push_back(torch::nn::ReLU(torch::nn::ReLUOptions(true)));
      feature_stage_.resize(features->size(), stage);
      in = v;
    }
    register_module("features", features);
    InitLikeTorchvision(*features);
    for (size_t s = 0; s < stage_channels.size(); ++s) {
      auto module = modules::MakeAttention(options.attention(), stage_channels[s]);
      if (module) register_module(options.attention().kind() + "_stage" + std::to_string(s + 1), module);
      attention.push_back(module);
    }
    bool imagenet = options.stem() == "imagenet";
    pool_size_ = imagenet ? 7 : 1;
    int64_t hidden = imagenet ? 4096 : 512;
    classifier = register_module(
        "classifier",
        MakeClassifier(512 * pool_size_ * pool_size_, hidden, options.num_classes()));
    torch::NoGradGuard no_grad;
    for (auto& m : classifier->modules(false)) {
      if (auto* linear = m->as<torch::nn::LinearImpl>()) {
        torch::nn::init::normal_(linear->weight, 0, 0.01);
        torch::nn::init::zeros_(linear->bias);
      }
    }
  }

  torch::Tensor Forward(const torch::Tensor& input, Trace* trace) override {
    CheckInput(input);
    auto x = input;
    size_t stage = 0;
    std::vector<const torch::nn::Module*> stage_modules;  // for the summary's stage rows
    const auto end = features->end();
    for (auto it = features->begin(); it != end; ++it) {
      if (trace != nullptr) stage_modules.push_back(it->ptr().get());
      // conv [bn] relu: one step (a prepared convolution under an inference plan).
      if (auto* conv = it->ptr()->as<torch::nn::Conv2dImpl>()) {
        auto* bn = it + 1 != end ? (it + 1)->ptr()->as<torch::nn::BatchNorm2dImpl>() : nullptr;
        if (bn != nullptr) {
          ++it;
          if (trace != nullptr) stage_modules.push_back(it->ptr().get());
        }
        const bool relu = it + 1 != end && (it + 1)->ptr()->as<torch::nn::ReLUImpl>() != nullptr;
        if (relu) ++it;
        x = ConvBnAct(*conv, bn, relu, x);
        continue;
      }
      x = it->forward(x);
      if (it->ptr()->as<torch::nn::MaxPool2dImpl>() == nullptr) continue;
      if (trace != nullptr) trace->Record("features (stage " + std::to_string(stage + 1) + ")", "Sequential", stage_modules, x);
      stage_modules.clear();
      if (attention[stage]) {
        x = AttentionForward(*attention[stage], x);
        Record(trace, options_.attention().kind() + "_stage" + std::to_string(stage + 1), *attention[stage], x);
      }
      ++stage;
    }
    x = torch::flatten(torch::adaptive_avg_pool2d(x, {pool_size_, pool_size_}), 1);
    x = classifier->forward(x);
    Record(trace, "classifier", *classifier, x);
    return x;
  }

  std::string Describe() const override {
    const auto& kind = options_.attention().kind();
    return "VGG" + std::to_string(options_.depth()) + (options_.batch_norm() ? "-BN" : "") +
           (kind == "none" ? "" : "-" + kind);
  }

  // features.N: the conv stage (1-5) layer N belongs to; classifier: the head.
  std::string GroupOf(const std::string& name) const override {
    if (name.rfind("classifier.", 0) == 0) return "head";
    if (name.rfind("features.", 0) != 0) return "";
    const size_t dot = name.find('.', 9);
    const size_t index = std::stoul(name.substr(9, dot - 9));
    return index < feature_stage_.size() ? "stage" + std::to_string(feature_stage_[index]) : "";
  }

  torch::nn::Sequential features{nullptr}, classifier{nullptr};
  std::vector<std::shared_ptr<modules::AttentionModule>> attention;

 private:
  VggOptions options_;
  int64_t pool_size_ = 1;
  std::vector<int64_t> feature_stage_;  // stage of each features.N
};

class CbamCnnImpl : public ModelImpl {
 public:
  explicit CbamCnnImpl(const CbamCnnOptions& options) {
    const int64_t channels[] = {3, 32, 64, 128};
    for (int i = 1; i <= 3; ++i) {
      auto conv = register_module("conv" + std::to_string(i),
                                  torch::nn::Conv2d(torch::nn::Conv2dOptions(channels[i - 1], channels[i], 3).padding(1)));
      auto bn = register_module("bn" + std::to_string(i), torch::nn::BatchNorm2d(channels[i]));
      auto attention = modules::MakeAttention(options.attention(), channels[i]);
      register_module("cbam" + std::to_string(i), attention);
      blocks_.push_back({conv, bn, attention});
    }
    fc1 = register_module("fc1", torch::nn::Linear(128 * 4 * 4, 512));
    dropout = register_module("dropout", torch::nn::Dropout(0.5));
    fc2 = register_module("fc2", torch::nn::Linear(512, options.num_classes()));
  }

  torch::Tensor Forward(const torch::Tensor& input, Trace* trace) override {
    CheckInput(input);
    auto x = input;
    for (size_t i = 0; i < blocks_.size(); ++i) {
      auto& b = blocks_[i];
      x = torch::max_pool2d(ConvBnAct(*b.conv, b.bn.get(), /*relu=*/true, x), 2);
      Record(trace, "conv" + std::to_string(i + 1), *b.conv, x);
      x = AttentionForward(*b.attention, x);
      Record(trace, "cbam" + std::to_string(i + 1), *b.attention, x);
    }
    x = torch::relu(fc1->forward(x.flatten(1)));
    Record(trace, "fc1", *fc1, x);
    x = fc2->forward(dropout->forward(x));
    Record(trace, "fc2", *fc2, x);
    return x;
  }

  std::string Describe() const override { return "CBAMCNN"; }

  // conv<k>/bn<k>: block<k>; fc1, fc2: the head.
  std::string GroupOf(const std::string& name) const override {
    if (name.rfind("fc1.", 0) == 0 || name.rfind("fc2.", 0) == 0) return "head";
    for (const char* layer : {"conv", "bn"}) {
      const size_t n = std::char_traits<char>::length(layer);
      if (name.compare(0, n, layer) == 0 && name.size() > n + 1 && name[n + 1] == '.') return "block" + name.substr(n, 1);
    }
    return "";
  }
  int64_t FixedInputSize() const override { return 32; }

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout dropout{nullptr};

 private:
  struct Block {
    torch::nn::Conv2d conv;
    torch::nn::BatchNorm2d bn;
    std::shared_ptr<modules::AttentionModule> attention;
  };
  std::vector<Block> blocks_;
};

}  // namespace

std::shared_ptr<ModelImpl> MakeVgg(const VggOptions& options) {
  Config(options.depth());
  if (options.num_classes() < 1) throw RangeError("numClasses must be at least 1, got " + std::to_string(options.num_classes()));
  if (options.stem() != "cifar" && options.stem() != "imagenet") {
    throw RangeError("stem must be 'cifar' or 'imagenet', got '" + options.stem() + "'");
  }
  for (int64_t c : {64, 128, 256, 512}) modules::ValidateAttention(options.attention(), c);
  return std::make_shared<VggImpl>(options);
}

std::shared_ptr<ModelImpl> MakeCbamCnn(const CbamCnnOptions& options) {
  if (options.num_classes() < 1) throw RangeError("numClasses must be at least 1, got " + std::to_string(options.num_classes()));
  if (options.attention().kind() != "cbam") throw RangeError("CBAMCNN uses CBAM attention only");
  for (int64_t c : {32, 64, 128}) modules::ValidateAttention(options.attention(), c);
  return std::make_shared<CbamCnnImpl>(options);
}

}  // namespace torch_attn::models
