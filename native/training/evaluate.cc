#include "training/evaluate.h"

#include "models/model.h"
#include "training/train_step.h"

namespace torch_attn::training {

EvalResult Evaluate(models::ModelImpl& model, const data::Loader& loader, bool keep_probabilities,
                    const std::atomic<bool>* cancel, models::Precision precision, int32_t* images_done) {
  const auto device = models::DeviceOf(model);
  models::CheckPrecision(precision, device, "evaluate() precision");
  return models::InEvalMode(model, [&] {
    EvalResult r;
    auto stream = loader.Epoch(0);
    while (auto batch = stream->Next()) {
      if (cancel != nullptr && cancel->load()) break;
      auto x = batch->images.to(device, /*non_blocking=*/batch->images.is_pinned());
      auto logits = model.Compute(x, precision);
      const int64_t classes = logits.size(1);
      if (r.classes == 0) {
        r.classes = classes;
        r.confusion.assign(static_cast<size_t>(classes * classes), 0);
      }
      auto labels = batch->labels.to(logits.device());
      CheckLabels(labels, logits.size(0), classes);
      r.loss_sum += torch::nn::functional::cross_entropy(logits, labels,
                                                         torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                        .item<double>();
      auto top = std::get<1>(logits.topk(std::min<int64_t>(5, classes), 1)).to(torch::kCPU).contiguous();
      auto cpu_labels = batch->labels;
      const int64_t n = logits.size(0), k = top.size(1);
      auto* t = top.data_ptr<int64_t>();
      auto* y = cpu_labels.data_ptr<int64_t>();
      for (int64_t i = 0; i < n; ++i) {
        r.top1 += t[i * k] == y[i];
        for (int64_t j = 0; j < k; ++j) r.top5 += t[i * k + j] == y[i];
        r.confusion[static_cast<size_t>(y[i] * classes + t[i * k])] += 1;
      }
      if (keep_probabilities) {
        auto probs = torch::softmax(logits, 1).to(torch::kCPU).contiguous();
        r.probabilities.insert(r.probabilities.end(), probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
        r.labels.insert(r.labels.end(), y, y + n);
      }
      r.count += n;
      // The counter lives in a SharedArrayBuffer the caller's thread reads with Atomics.load.
      if (images_done != nullptr) __atomic_store_n(images_done, static_cast<int32_t>(std::min<int64_t>(r.count, INT32_MAX)), __ATOMIC_RELAXED);
    }
    return r;
  });
}

}  // namespace torch_attn::training
