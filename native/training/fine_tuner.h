// The staged fine-tuner: one owner for a whole training run. It builds the optimizer over the
// run's parameter groups, runs every stage (which groups train, frozen BatchNorms, the lr of
// every group at every step from a precomputed table) and every epoch (batches from the
// loader threads, a train step each, metrics, evaluation), keeps the best metric, writes
// atomic last/best checkpoints, resumes from one, and stops at a batch boundary when
// cancelled. No N-API here: tuner_wrap.cc relays its events to JS.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/loader.h"
#include "distributed/group.h"
#include "models/model.h"
#include "models/pth_reader.h"
#include "training/optimizer.h"
#include "training/progress.h"
#include "training/train_step.h"

namespace torch_attn::training {

// ReduceLROnPlateau (PyTorch's semantics, relative threshold) over a stage's rates, stepped at
// each epoch end with the monitored metric; its state starts afresh with each stage.
struct PlateauOptions {
  std::string monitor = "testLoss";  // testLoss | testTop1 | trainLoss | trainAcc
  bool maximize = false;             // mode 'max' (accuracies) instead of 'min' (losses)
  double factor = 0.1, threshold = 1e-4, min_lr = 0;
  int64_t patience = 10, cooldown = 0;
};

struct StagePlan {
  std::string name;
  int64_t epochs = 0;
  std::vector<bool> trainable;   // per optimizer group
  std::vector<double> lr_table;  // rows of one rate per group: one row per step, or per epoch
  bool lr_per_step = true;
  std::optional<PlateauOptions> plateau;  // rates scaled down on plateaus of a metric
};

struct TunerPlan {
  std::vector<std::string> group_labels;
  std::string optimizer_type;        // sgd, adam, adamw
  std::vector<GroupOptions> groups;  // each group's parameter names and hyper-parameters
  std::vector<StagePlan> stages;
  bool freeze_batch_norm = true;     // BatchNorms of frozen groups keep their statistics
  StepOptions step_options;          // loss, clipping, NAM sparsity, precision, syncBatchNorm
  ScalerOptions scaler;              // fp16 loss scaling
  int64_t log_every = 100;           // a batch event every log_every batches (0: none)
  std::string checkpoint_dir;        // empty: no checkpoints
  std::string resume;                // a checkpoint to continue from; empty: a new run
  // Data-parallel: this process is one rank (its loaders shard the data). Gradients averaged,
  // epoch metrics and evaluation summed over the ranks, a cancel on any rank stops all at the
  // same batch, only rank 0 writes checkpoints. nullptr: one process.
  std::shared_ptr<distributed::Group> group;
};

struct StageEvent {
  int64_t index = 0;
  std::string name;
  std::vector<bool> trainable;  // per optimizer group
};

struct BatchEvent {
  int64_t epoch = 0, batch = 0, batches = 0;  // epoch 1-based; batch 1-based within the epoch
  double loss = 0, mean_loss = 0;
  std::vector<std::pair<std::string, double>> lr;  // the rate each group's step used, by group label
};

struct TunerEvents {
  // Called when a stage starts, after its trainable set is applied; the run waits for it.
  std::function<void(const StageEvent&)> on_stage;
  std::function<void(const BatchEvent&)> on_batch;
  std::function<void(const EpochRecord&)> on_epoch;
};

struct TunerResult {
  bool cancelled = false;
  std::vector<EpochRecord> records;  // the whole run's, a resumed run's earlier epochs first
  double best_metric = -1;
  int64_t best_epoch = 0;      // 0: no epoch finished
  std::string checkpoint;      // the last last.pth written, if any
  std::string best_checkpoint; // best.pth, when checkpoints are written and an epoch finished
};

// A training checkpoint as the fine-tuner writes it: the model's state dict, the optimizer's
// state by parameter name, the run's progress and LibTorch's generator state.
struct TrainingCheckpoint {
  models::NamedTensors model_state, optimizer_state;
  torch::Tensor rng_state;  // undefined when the file has none
  // A data-parallel run's: rank r's generator state (rank 0's is rng_state), for r >= 1.
  std::map<int64_t, torch::Tensor> rank_rng_states;
  Progress progress;
};

// CheckpointError naming `file` for anything that is not a torch-attn training checkpoint.
TrainingCheckpoint ReadTrainingCheckpoint(const std::string& file);

// RangeError when the plan does not fit the model or the loader (group count, table sizes,
// parameter names).
void CheckPlan(const TunerPlan& plan, const models::ModelImpl& model, int64_t batches_per_epoch);

// Runs the plan on the calling thread. Throws what the steps throw; CheckpointError for a
// resume file that is not a checkpoint of this run.
TunerResult RunFineTune(models::ModelImpl& model, const data::Loader& train, const data::Loader* test,
                        const TunerPlan& plan, const std::atomic<bool>& cancel, const TunerEvents& events);

}  // namespace torch_attn::training
