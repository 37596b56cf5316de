// The model interface every architecture implements, and the per-layer trace behind summary().
#pragma once

#include <torch/torch.h>

#include "models/inference_plan.h"
#include "models/precision.h"
#include "modules/attention.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace torch_attn::models {

struct SummaryRow {
  std::string name;
  std::string type;
  std::vector<int64_t> output_shape;
  int64_t params = 0;
  int64_t trainable = 0;
  int64_t macs = 0;  // multiply-accumulates of the step's convolutions and linear layers
};

// Collects one row per top-level step of a forward pass (stem, each block, each attention
// module, head) when summary() asks for it; forward passes without a trace record nothing.
// A convolution's forward pass. For a single image without autograd (inference), LibTorch
// sends convolutions with small kernels on small maps to its im2col + BLAS path, which with
// Debian's reference BLAS is several times slower than oneDNN: those go to oneDNN directly.
torch::Tensor Conv2dForward(torch::nn::Conv2dImpl& conv, const torch::Tensor& x);

class Trace {
 public:
  // While a trace is recording on a thread, Conv2dForward adds each convolution's MACs to it.
  Trace();
  ~Trace();
  Trace(const Trace&) = delete;
  Trace& operator=(const Trace&) = delete;
  static Trace* Active();
  void AddMacs(int64_t macs) { pending_macs_ += macs; }

  void Record(const std::string& name, const torch::nn::Module& module, const torch::Tensor& output);
  // One row for several modules run as one step (a VGG stage: its convolutions, norms, pool).
  void Record(const std::string& name, const std::string& type, const std::vector<const torch::nn::Module*>& modules, const torch::Tensor& output);
  const std::vector<SummaryRow>& rows() const { return rows_; }

 private:
  Trace* previous_;
  int64_t pending_macs_ = 0;
  std::vector<SummaryRow> rows_;
};

inline void Record(Trace* trace, const std::string& name, const torch::nn::Module& module, const torch::Tensor& out) {
  if (trace != nullptr) trace->Record(name, module, out);
}

// "torch_attn::modules::CbamImpl" -> "Cbam", "torch::nn::Conv2dImpl" -> "Conv2d".
std::string ShortTypeName(const torch::nn::Module& module);

class ModelImpl : public torch::nn::Module {
 public:
  // x: B x C x H x W. Checks the input before touching LibTorch kernels.
  virtual torch::Tensor Forward(const torch::Tensor& x, Trace* trace) = 0;
  virtual std::string Describe() const = 0;
  virtual int64_t InputChannels() const { return 3; }
  // Exact spatial size the model needs, or 0 when any size its layers can reduce is fine.
  virtual int64_t FixedInputSize() const { return 0; }
  // The parameter group ('stem', 'layer1'..'layer4', 'stage1'..'stage5', 'block1'..'block3',
  // 'head') of a state-dict entry outside the attention modules, "" for none. Attention
  // modules are found by type (see GroupTable).
  virtual std::string GroupOf(const std::string& name) const { return ""; }

  void CheckInput(const torch::Tensor& x) const;

  // The forward pass as every entry point runs it (train steps, evaluation, predict, the
  // fine-tuner): the input in the model's memory format, autocast in `precision`, float32
  // outputs. In eval mode without gradients, through the inference plan for x's shape (made or
  // rebuilt as needed; see inference_plan.h).
  torch::Tensor Compute(const torch::Tensor& x, Precision precision, Trace* trace = nullptr);

  // The model's inference plans (model.prepareInference(), model.inferencePlan()).
  PlanCache& plans() { return plans_; }

  // Channels-last (NHWC) memory for the 4-D weights and for inputs: oneDNN's convolutions run
  // without layout reorders. State dicts are written in the standard layout either way.
  void SetChannelsLast(bool on);
  bool channels_last() const { return channels_last_; }

  // train(mode), then, in training mode, the BatchNorms named by SetFrozenBatchNorms() back to
  // inference mode: the frozen-BN policy survives every train() call.
  void ApplyTrainingMode(bool mode);
  // BatchNorm modules (by module name) that stay in inference mode while the model trains.
  // Throws RangeError for a name that is not a BatchNorm of this model.
  void SetFrozenBatchNorms(const std::vector<std::string>& names);
  const std::vector<std::string>& frozen_batch_norms() const { return frozen_bn_; }

 private:
  std::vector<std::string> frozen_bn_;
  bool channels_last_ = false;
  PlanCache plans_;
};

// Every state-dict entry (parameters, then buffers) with its group: 'attention' for anything
// inside an attention module, else the architecture's GroupOf(). The table freezing and
// optimizer groups are resolved over (timm's group_matcher, on the model).
std::vector<std::pair<std::string, std::string>> GroupTable(const ModelImpl& model);

// BatchNorms whose parameters are all frozen stay in inference mode while the model trains
// (`freeze`), or every BatchNorm trains (`!freeze`).
void ApplyBatchNormPolicy(ModelImpl& model, bool freeze);

// RangeError naming the first name that is not a parameter; nothing changes then.
void SetRequiresGrad(ModelImpl& model, const std::vector<std::string>& names, bool flag);

int64_t ParameterCount(const torch::nn::Module& model, bool trainable_only);

// The device of the model's first parameter (the CPU without parameters). DeviceOf and
// ForEachParameterAndBuffer walk the modules without the dotted name parameters() and buffers()
// build for every tensor: each such call cost ~20 us on a ResNet18, and predict() made four a
// call (the JS thread's device and input checks, the precision check, the plan's signature).
c10::Device DeviceOf(const torch::nn::Module& model);

// f(t) for each parameter and each defined buffer of model and the modules under it, module by
// module.
void ForEachParameterAndBuffer(const torch::nn::Module& model, const std::function<void(const torch::Tensor&)>& f);

// An input tensor moved to the model's device as float32 (TypeError for integer tensors; the
// model checks rank and channels).
torch::Tensor PrepareInput(const torch::Tensor& x, const torch::nn::Module& model);

// Runs fn in eval mode with gradients off, restoring the previous mode however fn ends. A model
// already in eval mode is not written to (readers on the JS thread may look at its mode).
template <typename Fn>
auto InEvalMode(ModelImpl& model, Fn&& fn) {
  const bool was_training = model.is_training();
  torch::NoGradGuard no_grad;
  if (!was_training) return fn();
  model.ApplyTrainingMode(false);
  try {
    auto result = fn();
    model.ApplyTrainingMode(was_training);
    return result;
  } catch (...) {
    model.ApplyTrainingMode(was_training);
    throw;
  }
}

// Outputs for x in eval mode, `batch` images at a time, in `precision`, on the CPU (float32).
torch::Tensor Predict(ModelImpl& model, const torch::Tensor& x, int64_t batch, Precision precision = Precision::kFp32);

// Several callers' inputs (each B_i x C x H x W, the same C, H, W) in one pass through Predict:
// one output per input, in order (the dynamic batcher's unit of work).
std::vector<torch::Tensor> PredictParts(ModelImpl& model, const std::vector<torch::Tensor>& parts, Precision precision);

// Plans for inputs of each shape (B x C x H x W) in `precision`, made ahead of the first call (a
// service at start-up); what the model then holds.
std::vector<PlanDescription> PrepareInference(ModelImpl& model, const std::vector<std::vector<int64_t>>& shapes, Precision precision);

// Every attention module's maps for x (B x C x H x W) in one eager forward pass in eval mode,
// by the module's name in the model (`cbam_layer1`, `layer2.0.nam`, ...), in forward order.
std::vector<std::pair<std::string, modules::NamedMaps>> AttentionMapsOf(ModelImpl& model, const torch::Tensor& x);

// One row per top-level step of a forward pass over zeros of `shape`, in eval mode.
std::vector<SummaryRow> Summarize(ModelImpl& model, const std::vector<int64_t>& shape);

// Kaiming-normal (fan_out, ReLU) for convolutions, BatchNorm at weight 1 / bias 0: torchvision's
// initialisation for ResNet and VGG. Attention modules keep their own initialisation.
void InitLikeTorchvision(torch::nn::Module& module);

}  // namespace torch_attn::models

namespace torch_attn::models {

// One attention module on its own, as a model: its parameters keep the module's own names
// (channel_attn.fc.0.weight, ...), and Maps() gives its attention maps.
class StandaloneAttentionImpl : public ModelImpl {
 public:
  StandaloneAttentionImpl(const modules::AttentionOptions& options, int64_t channels);
  torch::Tensor Forward(const torch::Tensor& x, Trace* trace) override;
  std::string Describe() const override;
  int64_t InputChannels() const override { return channels_; }
  std::string GroupOf(const std::string&) const override { return "attention"; }
  modules::NamedMaps Maps(const torch::Tensor& x);

 private:
  std::shared_ptr<modules::AttentionModule> module_;
  int64_t channels_;
};

}  // namespace torch_attn::models
