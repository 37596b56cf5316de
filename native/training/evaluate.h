// Evaluation over a loader: summed loss, top-1 / top-5 hits, the confusion matrix and, when
// asked, the softmax outputs. In eval mode without gradients; the model's mode is restored.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <vector>

#include "data/loader.h"
#include "models/model.h"

namespace torch_attn::training {

struct EvalResult {
  double loss_sum = 0;
  int64_t count = 0, top1 = 0, top5 = 0, classes = 0;
  std::vector<int64_t> confusion;    // [true class x predicted class]
  std::vector<float> probabilities;  // [count x classes] softmax outputs, when asked for
  std::vector<int64_t> labels;       // [count], with the probabilities
};

// In `precision` (autocast; the loss and softmax in float32). RangeError for a precision the
// model's device cannot run. `images_done`, when given, is stored (relaxed, atomically) with the
// images evaluated so far after each batch: a progress counter another thread reads.
EvalResult Evaluate(models::ModelImpl& model, const data::Loader& loader, bool keep_probabilities,
                    const std::atomic<bool>* cancel, models::Precision precision = models::Precision::kFp32,
                    int32_t* images_done = nullptr);

}  // namespace torch_attn::training
