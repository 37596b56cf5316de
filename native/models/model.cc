#include "models/model.h"

#include <optional>
#include <unordered_map>

#include "common/errors.h"
#include "common/torch_compat.h"
#include "models/winograd_training.h"
#include "modules/attention.h"
#include "runtime/cpu_cache.h"

namespace torch_attn::models {

std::string ShortTypeName(const torch::nn::Module& module) {
  std::string name = module.name();
  auto colon = name.rfind("::");
  if (colon != std::string::npos) name = name.substr(colon + 2);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0) name.resize(name.size() - 4);
  return name;
}

namespace {
thread_local Trace* active_trace = nullptr;

// MACs of the layers that do not run through Conv2dForward: linear layers, and the convolutions
// inside attention modules (on pooled 1 x 1 descriptors, or at the module's resolution for a
// spatial kernel; ECA's 1-D convolution over the channels).
int64_t OtherMacs(const torch::nn::Module& module, const torch::Tensor& output, bool in_attention) {
  const int64_t batch = output.dim() > 0 ? output.size(0) : 1;
  const int64_t spatial = output.dim() == 4 ? output.size(2) * output.size(3) : 1;
  const int64_t channels = output.dim() >= 2 ? output.size(1) : 1;
  in_attention = in_attention || dynamic_cast<const modules::AttentionModule*>(&module) != nullptr;
  int64_t macs = 0;
  if (const auto* linear = module.as<torch::nn::LinearImpl>()) macs += linear->weight.numel() * batch;
  if (in_attention) {
    if (const auto* conv = module.as<torch::nn::Conv2dImpl>()) {
      const bool pointwise = conv->weight.size(2) * conv->weight.size(3) == 1;
      macs += conv->weight.numel() * (pointwise ? 1 : spatial) * batch;
    }
    if (const auto* conv = module.as<torch::nn::Conv1dImpl>()) macs += conv->weight.numel() * channels * batch;
  }
  for (const auto& child : module.children()) macs += OtherMacs(*child, output, in_attention);
  return macs;
}
}  // namespace

Trace::Trace() : previous_(active_trace) { active_trace = this; }
Trace::~Trace() { active_trace = previous_; }
Trace* Trace::Active() { return active_trace; }

void Trace::Record(const std::string& name, const torch::nn::Module& module, const torch::Tensor& output) {
  Record(name, ShortTypeName(module), {&module}, output);
}

void Trace::Record(const std::string& name, const std::string& type, const std::vector<const torch::nn::Module*>& modules, const torch::Tensor& output) {
  SummaryRow row;
  row.name = name;
  row.type = type;
  row.output_shape = output.sizes().vec();
  row.macs = pending_macs_;
  pending_macs_ = 0;
  for (const auto* module : modules) {
    for (const auto& p : module->parameters()) {
      row.params += p.numel();
      if (p.requires_grad()) row.trainable += p.numel();
    }
    row.macs += OtherMacs(*module, output, false);
  }
  rows_.push_back(std::move(row));
}

void ModelImpl::CheckInput(const torch::Tensor& x) const {
  if (x.dim() != 4) {
    throw RangeError(Describe() + " expects a 4-D input (batch, channels, height, width), got " +
                     std::to_string(x.dim()) + "-D " + c10::str(x.sizes()));
  }
  if (x.size(1) != InputChannels()) {
    throw RangeError(Describe() + " expects " + std::to_string(InputChannels()) + " input channels, got " +
                     std::to_string(x.size(1)) + " " + c10::str(x.sizes()));
  }
  if (x.size(0) < 1) throw RangeError(Describe() + " got an empty batch " + c10::str(x.sizes()));
  if (x.size(2) < 1 || x.size(3) < 1) throw RangeError(Describe() + " got an empty image " + c10::str(x.sizes()) + ": height and width must be at least 1");
  int64_t fixed = FixedInputSize();
  if (fixed > 0 && (x.size(2) != fixed || x.size(3) != fixed)) {
    throw RangeError(Describe() + " expects " + std::to_string(fixed) + "x" + std::to_string(fixed) +
                     " inputs, got " + c10::str(x.sizes()));
  }
  if (!at::isFloatingType(x.scalar_type())) {
    throw TypeError(Describe() + " expects a floating-point input, got " + std::string(c10::toString(x.scalar_type())));
  }
}

void ModelImpl::ApplyTrainingMode(bool mode) {
  if (mode) plans_.Invalidate();  // BatchNorm statistics may change without a version bump
  train(mode);
  if (!mode || frozen_bn_.empty()) return;
  auto modules = named_modules();
  for (const auto& name : frozen_bn_) modules[name]->eval();
}

void ModelImpl::SetFrozenBatchNorms(const std::vector<std::string>& names) {
  auto modules = named_modules();
  for (const auto& name : names) {
    const auto* module = modules.find(name);
    if (module == nullptr || (!(*module)->as<torch::nn::BatchNorm2dImpl>() && !(*module)->as<torch::nn::BatchNorm1dImpl>())) {
      throw RangeError("'" + name + "' is not a BatchNorm module of " + Describe());
    }
  }
  frozen_bn_ = names;
  ApplyTrainingMode(is_training());
}

std::vector<std::pair<std::string, std::string>> GroupTable(const ModelImpl& model) {
  std::vector<std::string> attention;  // module-name prefixes ("cbam_layer1.", "layer1.0.nam.")
  for (const auto& m : model.named_modules()) {
    if (dynamic_cast<const modules::AttentionModule*>(m.value().get()) != nullptr) attention.push_back(m.key().empty() ? "" : m.key() + ".");
  }
  auto group_of = [&](const std::string& name) {
    for (const auto& prefix : attention) {
      if (name.compare(0, prefix.size(), prefix) == 0) return std::string("attention");
    }
    return model.GroupOf(name);
  };
  std::vector<std::pair<std::string, std::string>> table;
  for (const auto& p : model.named_parameters()) table.emplace_back(p.key(), group_of(p.key()));
  for (const auto& b : model.named_buffers()) table.emplace_back(b.key(), group_of(b.key()));
  return table;
}

void ApplyBatchNormPolicy(ModelImpl& model, bool freeze) {
  std::vector<std::string> frozen;
  if (freeze) {
    auto params = model.named_parameters();
    const std::string suffix = ".running_mean";
    for (const auto& b : model.named_buffers()) {
      const std::string& name = b.key();
      if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
      const std::string bn = name.substr(0, name.size() - suffix.size());
      const auto* weight = params.find(bn + ".weight");
      const auto* bias = params.find(bn + ".bias");
      // Affine-free BatchNorms have no weight to freeze: they follow the model's mode.
      if (weight != nullptr && !weight->requires_grad() && (bias == nullptr || !bias->requires_grad())) frozen.push_back(bn);
    }
  }
  model.SetFrozenBatchNorms(frozen);
}

void SetRequiresGrad(ModelImpl& model, const std::vector<std::string>& names, bool flag) {
  auto params = model.named_parameters();
  for (const auto& name : names) {
    if (params.find(name) == nullptr) throw RangeError("'" + name + "' is not a parameter of " + model.Describe());
  }
  for (const auto& name : names) params[name].set_requires_grad(flag);
}

int64_t ParameterCount(const torch::nn::Module& model, bool trainable_only) {
  int64_t count = 0;
  for (const auto& p : model.parameters()) {
    if (!trainable_only || p.requires_grad()) count += p.numel();
  }
  return count;
}

namespace {

// The first of parameters()'s tensors: a module's own before those of its children, in order.
std::optional<c10::Device> FirstParameterDevice(const torch::nn::Module& module) {
  for (const auto& p : module.parameters(/*recurse=*/false)) return p.device();
  for (const auto& child : module.children()) {
    if (auto device = FirstParameterDevice(*child)) return device;
  }
  return std::nullopt;
}

}  // namespace

c10::Device DeviceOf(const torch::nn::Module& model) { return FirstParameterDevice(model).value_or(c10::Device(c10::kCPU)); }

void ForEachParameterAndBuffer(const torch::nn::Module& model, const std::function<void(const torch::Tensor&)>& f) {
  for (const auto& p : model.parameters(/*recurse=*/false)) f(p);
  for (const auto& b : model.buffers(/*recurse=*/false)) {
    if (b.defined()) f(b);
  }
  for (const auto& child : model.children()) ForEachParameterAndBuffer(*child, f);
}

torch::Tensor PrepareInput(const torch::Tensor& x, const torch::nn::Module& model) {
  if (!at::isFloatingType(x.scalar_type())) {
    throw TypeError("model input must be a floating-point tensor (float32), got " + std::string(c10::toString(x.scalar_type())) +
                    "; convert images with toTensor() or tensor(..., { dtype: 'float32' })");
  }
  return x.to(DeviceOf(model), at::kFloat);
}

torch::Tensor ModelImpl::Compute(const torch::Tensor& x, Precision precision, Trace* trace) {
  const auto& input = channels_last_ && x.dim() == 4 ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
  AutocastScope autocast(precision, input.device());
  InferencePlan* plan = trace == nullptr ? plans_.For(*this, input, precision) : nullptr;
  torch::Tensor out;
  if (plan != nullptr) {
    try {
      InferencePlan::Scope scope(plan);
      ++plan->uses;
      out = Forward(input, trace);
    } catch (const PlanUnavailable&) {
      plans_.Refuse(precision);  // and this call runs eagerly
    } catch (const PlanSkipped&) {
      // this call runs eagerly; the next ones too until the weights change
    }
  }
  if (!out.defined()) out = Forward(input, trace);
  return out.scalar_type() == at::kFloat ? out : out.to(at::kFloat);
}

void ModelImpl::SetChannelsLast(bool on) {
  torch::NoGradGuard no_grad;
  const auto format = on ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  for (auto& t : parameters()) {
    if (t.dim() == 4) t.set_data(t.data().contiguous(format));
  }
  for (auto& t : buffers()) {
    if (t.dim() == 4) t.set_data(t.data().contiguous(format));
  }
  channels_last_ = on;
  plans_.Invalidate();
}

torch::Tensor Predict(ModelImpl& model, const torch::Tensor& x, int64_t batch, Precision precision) {
  CheckPrecision(precision, DeviceOf(model), "predict() precision");
  return InEvalMode(model, [&] {
    std::vector<torch::Tensor> outputs;
    for (int64_t start = 0; start < x.size(0); start += batch) {
      outputs.push_back(model.Compute(x.slice(0, start, std::min(x.size(0), start + batch)), precision));
    }
    return (outputs.size() == 1 ? outputs.front() : torch::cat(outputs)).to(c10::kCPU);
  });
}

std::vector<torch::Tensor> PredictParts(ModelImpl& model, const std::vector<torch::Tensor>& parts, Precision precision) {
  if (parts.empty()) return {};
  std::vector<int64_t> sizes;
  for (const auto& p : parts) {
    if (p.dim() != 4 || p.sizes().slice(1) != parts.front().sizes().slice(1)) {
      throw RangeError("inputs batched together must all be B x C x H x W with the same C, H, W; got " +
                       c10::str(parts.front().sizes()) + " and " + c10::str(p.sizes()));
    }
    sizes.push_back(p.size(0));
  }
  auto x = parts.size() == 1 ? parts.front() : torch::cat(parts);
  auto out = Predict(model, x, std::max<int64_t>(x.size(0), 1), precision);
  auto split = out.split_with_sizes(sizes);
  return std::vector<torch::Tensor>(split.begin(), split.end());
}

std::vector<PlanDescription> PrepareInference(ModelImpl& model, const std::vector<std::vector<int64_t>>& shapes, Precision precision) {
  CheckPrecision(precision, DeviceOf(model), "prepareInference() precision");
  InEvalMode(model, [&] {
    for (const auto& shape : shapes) {
      auto x = torch::zeros(shape, torch::TensorOptions().device(DeviceOf(model)));
      model.CheckInput(x);
      model.Compute(x, precision);
    }
    return 0;
  });
  // The warm-up passes' activation buffers are not the plans' to keep: the calls that use a plan
  // cache their own.
  runtime::EmptyCpuCache();
  return model.plans().Describe();
}

std::vector<std::pair<std::string, modules::NamedMaps>> AttentionMapsOf(ModelImpl& model, const torch::Tensor& x) {
  std::unordered_map<const torch::nn::Module*, std::string> names;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) names.emplace(item.value().get(), item.key());
  return InEvalMode(model, [&] {
    AttentionRecorder recorder;
    model.Forward(x.contiguous(model.channels_last() ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous), nullptr);
    std::vector<std::pair<std::string, modules::NamedMaps>> out;
    for (const auto& [module, maps] : recorder.maps()) {
      auto name = names.find(module);
      out.emplace_back(name == names.end() ? std::string("attention") : name->second, maps);
    }
    return out;
  });
}

std::vector<SummaryRow> Summarize(ModelImpl& model, const std::vector<int64_t>& shape) {
  Trace trace;
  InEvalMode(model, [&] {
    model.Forward(torch::zeros(shape, torch::TensorOptions().device(DeviceOf(model))), &trace);
    return 0;
  });
  return trace.rows();
}

void InitLikeTorchvision(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  if (dynamic_cast<modules::AttentionModule*>(&module) != nullptr) return;
  if (auto* conv = module.as<torch::nn::Conv2dImpl>()) {
    torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    if (conv->bias.defined()) torch::nn::init::zeros_(conv->bias);
  } else if (auto* bn = module.as<torch::nn::BatchNorm2dImpl>()) {
    torch::nn::init::ones_(bn->weight);
    torch::nn::init::zeros_(bn->bias);
  }
  for (auto& child : module.children()) InitLikeTorchvision(*child);
}

}  // namespace torch_attn::models

namespace torch_attn::models {

StandaloneAttentionImpl::StandaloneAttentionImpl(const modules::AttentionOptions& options, int64_t channels)
    : channels_(channels) {
  if (options.kind() == "none") throw RangeError("an attention module needs a kind: 'cbam', 'nam', 'se' or 'eca'");
  module_ = modules::MakeAttention(options, channels);
  for (const auto& child : module_->named_children()) register_module(child.key(), child.value());
  for (const auto& param : module_->named_parameters(/*recurse=*/false)) register_parameter(param.key(), param.value());
}

torch::Tensor StandaloneAttentionImpl::Forward(const torch::Tensor& x, Trace* trace) {
  auto out = AttentionForward(*module_, x);  // under a plan, CBAM's prepared form
  Record(trace, module_->BlockName(), *module_, out);
  return out;
}

std::string StandaloneAttentionImpl::Describe() const {
  std::string name = module_->BlockName();
  for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

modules::NamedMaps StandaloneAttentionImpl::Maps(const torch::Tensor& x) { return module_->Maps(x); }

namespace variants = compat::variants;

torch::Tensor Conv2dForward(torch::nn::Conv2dImpl& conv, const torch::Tensor& x) {
  if (auto* trace = Trace::Active()) {
    auto y = conv.forward(x);
    trace->AddMacs(conv.weight.numel() * y.size(0) * y.size(2) * y.size(3));
    return y;
  }
  if (const int tile = WinogradTrainingTile(conv, x)) return WinogradTrainingConv(conv, x, tile);
  const auto& o = conv.options;
  // Not under autocast: at::mkldnn_convolution is not on autocast's lists, so it would run in fp32.
  if (at::hasMKLDNN() && !torch::GradMode::is_enabled() && !compat::AutocastEnabled(c10::DeviceType::CPU) && x.dim() == 4 &&
      x.size(0) == 1 && x.device().is_cpu() &&
      x.scalar_type() == torch::kFloat && !o.transposed() &&
      variants::holds_alternative<torch::ExpandingArray<2>>(o.padding()) &&
      variants::holds_alternative<torch::enumtype::kZeros>(o.padding_mode())) {
    const auto& padding = variants::get<torch::ExpandingArray<2>>(o.padding());
    c10::optional<torch::Tensor> bias;
    if (conv.bias.defined()) bias = conv.bias;
    return at::mkldnn_convolution(x.contiguous(), conv.weight, bias, *padding, *o.stride(), *o.dilation(), o.groups());
  }
  return conv.forward(x);
}

}  // namespace torch_attn::models
