#include "training/train_step.h"

#include <optional>

#include "common/errors.h"
#include "models/winograd_training.h"
#include "modules/batch_norm.h"
#include "modules/nam.h"

namespace torch_attn::training {

void CheckLabels(const torch::Tensor& labels, int64_t batch, int64_t classes) {
  if (labels.scalar_type() != torch::kLong || labels.dim() != 1 || labels.size(0) != batch) {
    throw RangeError("labels must be a 1-D int64 tensor with one class index per image (" + std::to_string(batch) +
                     "), got " + std::string(c10::toString(labels.scalar_type())) + " " + c10::str(labels.sizes()));
  }
  if (batch > 0) {
    auto min = labels.min().item<int64_t>(), max = labels.max().item<int64_t>();
    if (min < 0 || max >= classes) {
      throw RangeError("labels must be class indices from 0 to " + std::to_string(classes - 1) + " (the model has " + std::to_string(classes) +
                       (classes == 1 ? " output" : " outputs") + "), got values from " + std::to_string(min) + " to " + std::to_string(max) +
                       (max >= classes ? ": does the data have more classes than the model was built for (numClasses)?" : ""));
    }
  }
}

StepResult TrainStep(models::ModelImpl& model, torch::optim::Optimizer& optimizer, const torch::Tensor& x,
                     const torch::Tensor& labels, const StepOptions& options, GradScaler* scaler,
                     distributed::DataParallel* replica) {
  const bool fp16 = options.precision() == models::Precision::kFp16;
  models::CheckPrecision(options.precision(), models::DeviceOf(model), "trainStep() precision");
  if (fp16 && scaler == nullptr) throw RangeError("trainStep(): fp16 needs a loss scaler");
  bool trainable = false;
  for (const auto& p : model.parameters()) trainable = trainable || p.requires_grad();
  if (!trainable) throw RangeError("nothing to train: every parameter of " + model.Describe() + " is frozen");
  // Gradients set to none (PyTorch 2's zero_grad default): a frozen parameter then has no
  // gradient, so no optimizer updates it, not even from momentum it gathered while it trained.
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
    }
  }
  torch::Tensor logits;
  {
    std::optional<modules::SyncBatchNormScope> sync;
    if (replica != nullptr) {
      replica->BeforeForward();
      if (options.sync_batch_norm()) sync.emplace(replica->BatchNormSum());
    }
    models::WinogradTrainingScope winograd(options.winograd());
    logits = model.Compute(x, options.precision());
  }
  CheckLabels(labels, logits.size(0), logits.size(1));
  if (replica != nullptr) replica->AfterForward();  // from here a backward must follow
  auto backward = [replica](const torch::Tensor& l) {
    if (replica != nullptr) {
      replica->Backward(l);
    } else {
      l.backward();
    }
  };
  auto target = labels.to(logits.device());
  auto loss = torch::nn::functional::cross_entropy(
      logits, target, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(options.label_smoothing()));
  StepResult result;
  if (fp16) {
    backward(scaler->Scale(loss));
    result.skipped = scaler->Unscale(GradScaler::GradsOf(model.parameters()));
  } else {
    backward(loss);
  }
  if (!result.skipped) {
    modules::ApplyNamSparsity(model, options.nam_sparsity());
    if (options.grad_clip() > 0) torch::nn::utils::clip_grad_norm_(model.parameters(), options.grad_clip());
    optimizer.step();
  }
  if (fp16) scaler->Update(result.skipped);
  result.loss = loss.item<double>();
  result.correct = logits.argmax(1).eq(target).sum().item<int64_t>();
  result.count = logits.size(0);
  return result;
}

}  // namespace torch_attn::training
