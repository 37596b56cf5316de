// The records of a training run, defined once: each epoch's record, the run's identity (what a
// resume must match) and its progress (where to continue), with the one JSON form they take in
// a checkpoint's `training.progress` and in the events and results JS receives.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace torch_attn::training {

// Insertion-ordered, so group labels keep the optimizer's order wherever a record is shown.
using Json = nlohmann::ordered_json;

struct EpochRecord {
  int64_t stage = 0;  // index of the stage
  std::string stage_name;
  int64_t epoch = 0;  // 1-based, counted over the whole run
  double train_loss = 0, train_acc = 0;
  bool has_test = false;
  double test_loss = 0, test_top1 = 0, test_top5 = 0;
  std::vector<std::pair<std::string, double>> lr;  // per optimizer group (label, rate) at the epoch's last step
  double seconds = 0, images_per_second = 0;
  bool loss_scaled = false;   // an fp16 run: the fields below are in the record
  int64_t skipped_steps = 0;  // steps skipped for inf/NaN gradients
  double loss_scale = 0;      // the scale at the epoch's end
};

// Sums of an epoch in progress, so a resumed epoch reports the same metrics.
struct Partial {
  double loss_sum = 0;
  int64_t correct = 0, count = 0;
  double seconds = 0;
  int64_t skipped = 0;  // fp16 steps skipped so far in the epoch
};

// What a resumed run must share with the run that wrote the checkpoint.
struct RunIdentity {
  int64_t version = 1;
  uint64_t seed = 0;  // the train loader's seed
  int64_t batches_per_epoch = 0;
  std::vector<std::string> groups;                       // optimizer group labels
  std::vector<std::pair<std::string, int64_t>> stages;  // (name, epochs)
  std::string optimizer;
};

// ReduceLROnPlateau's state within a stage: the factor on the stage's rates, the best metric
// so far and the counters (PyTorch's num_bad_epochs, cooldown_counter).
struct PlateauState {
  double scale = 1;
  bool has_best = false;
  double best = 0;
  int64_t bad = 0, cooldown = 0;
};

struct Progress {
  int64_t version = 1;
  int64_t stage = 0;
  std::string stage_name;
  int64_t next_epoch = 0, next_batch = 0;  // where to continue: epoch 0-based, batches done in it
  int64_t step = 0;                        // optimizer steps done
  Partial partial;
  double best_metric = -1;
  int64_t best_epoch = 0;  // 0: none yet
  RunIdentity run;
  std::vector<EpochRecord> records;
  bool has_scaler = false;  // an fp16 run: its loss scale and growth count, to resume exactly
  double scale = 0;
  int64_t growth_tracker = 0;
  PlateauState plateau;  // stages scheduled by a plateau only
};

void to_json(Json& j, const EpochRecord& r);
void from_json(const Json& j, EpochRecord& r);
void to_json(Json& j, const Partial& p);
void from_json(const Json& j, Partial& p);
void to_json(Json& j, const RunIdentity& r);
void from_json(const Json& j, RunIdentity& r);
void to_json(Json& j, const Progress& p);
void from_json(const Json& j, Progress& p);

// The checkpoint's training.progress bytes; ParseProgress throws CheckpointError naming `where`
// for anything that is not a progress record of this version.
std::string ProgressBytes(const Progress& progress);
Progress ParseProgress(const std::string& bytes, const std::string& where);

// The first field of `saved` that differs from `now`, as a CheckpointError naming both values;
// nothing when the runs match.
void CheckSameRun(const RunIdentity& saved, const RunIdentity& now);

}  // namespace torch_attn::training
