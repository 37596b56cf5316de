// The native training loop of one stage of a staged fine-tune: batches from the loader threads,
// a train step each, the lr of every group set per step from a precomputed table, metrics,
// evaluation after each epoch, checkpoints, and a cancel flag checked between batches. Runs
// on a thread of its own; the stage's trainable set and frozen BatchNorms are set before.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "data/loader.h"
#include "models/model.h"
#include "training/train_step.h"

namespace torch_attn::training {

struct EpochRecord {
  int64_t stage = 0;
  std::string stage_name;
  int64_t epoch = 0;  // 1-based, counted over the whole run
  double train_loss = 0, train_acc = 0;
  bool has_test = false;
  double test_loss = 0, test_top1 = 0, test_top5 = 0;
  std::vector<double> lr;  // per optimizer group, at the epoch's last step
  double seconds = 0, images_per_second = 0;

  std::string ToJson(const std::vector<std::string>& group_labels) const;
};

struct BatchEvent {
  int64_t epoch = 0, batch = 0, batches = 0;  // epoch 1-based; batch 1-based within the epoch
  double loss = 0, mean_loss = 0;
};

// Sums of an epoch in progress (so a resumed epoch reports the same metrics).
struct Partial {
  double loss_sum = 0;
  int64_t correct = 0, count = 0;
  double seconds = 0;
};

struct FitPlan {
  int64_t stage = 0;
  std::string stage_name;
  int64_t first_epoch = 0;  // global, 0-based: the first epoch this call runs
  int64_t epochs = 0;       // epochs to run
  int64_t start_batch = 0;  // batches of the first epoch already done (resume)
  int64_t step = 0;         // global optimizer steps already done
  std::vector<double> lr_table;  // [steps of this stage x groups], row 0 = the stage's first step
  int64_t table_start = 0;       // global step of row 0
  std::vector<std::string> group_labels;
  StepOptions step_options;
  int64_t log_every = 100;
  std::string checkpoint_dir;  // empty: no checkpoints
  std::string optimizer_type;
  std::string history_json = "[]";  // earlier epochs' records, for the checkpoint's progress
  std::string run_json = "{}";      // the run's settings, stored in the checkpoint as given
  double best_metric = -1;
  int64_t best_epoch = 0;
  Partial partial;
};

struct FitOutcome {
  bool cancelled = false;
  std::vector<EpochRecord> records;
  int64_t next_epoch = 0, next_batch = 0, step = 0;
  double best_metric = -1;
  int64_t best_epoch = 0;
  std::string checkpoint;  // the last checkpoint written, if any
};

struct FitCallbacks {
  std::function<void(const BatchEvent&)> on_batch;
  std::function<void(const EpochRecord&)> on_epoch;
};

FitOutcome RunStage(models::ModelImpl& model, torch::optim::Optimizer& optimizer, const data::Loader& train,
                    const data::Loader* test, const FitPlan& plan, const std::atomic<bool>& cancel,
                    const FitCallbacks& callbacks);

struct EvalResult {
  double loss_sum = 0;
  int64_t count = 0, top1 = 0, top5 = 0, classes = 0;
  std::vector<int64_t> confusion;   // [true class x predicted class]
  std::vector<float> probabilities;  // [count x classes] softmax outputs, when asked for
  std::vector<int64_t> labels;       // [count], with the probabilities
};

EvalResult Evaluate(models::ModelImpl& model, const data::Loader& loader, bool keep_probabilities,
                    const std::atomic<bool>* cancel);

}  // namespace torch_attn::training
