#include "training/fine_tuner.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <unordered_set>

#include "common/errors.h"
#include "common/files.h"
#include "distributed/data_parallel.h"
#include "models/pth_writer.h"
#include "models/state_dict.h"
#include "runtime/runtime.h"
#include "training/evaluate.h"

namespace torch_attn::training {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

torch::Tensor BytesTensor(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

std::string TensorBytes(const torch::Tensor& t) {
  auto bytes = t.to(torch::kCPU).to(torch::kUInt8).contiguous();
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), static_cast<size_t>(bytes.numel()));
}

RunIdentity IdentityOf(const TunerPlan& plan, const data::Loader& train) {
  RunIdentity id;
  id.seed = train.options().seed;
  id.batches_per_epoch = train.batch_count();
  id.groups = plan.group_labels;
  for (const auto& s : plan.stages) id.stages.emplace_back(s.name, s.epochs);
  id.optimizer = plan.optimizer_type;
  return id;
}

// The run in progress: the model, its optimizer, where it stands, and the records so far.
class Run {
 public:
  Run(models::ModelImpl& model, const data::Loader& train, const data::Loader* test, const TunerPlan& plan,
      const std::atomic<bool>& cancel, const TunerEvents& events)
      : model_(model), train_(train), test_(test), plan_(plan), cancel_(cancel), events_(events),
        optimizer_(MakeOptimizer(plan.optimizer_type, model, plan.groups)), scaler_(plan.scaler) {
    progress_.run = IdentityOf(plan, train);
    models::CheckPrecision(plan.step_options.precision(), models::DeviceOf(model), "fineTune precision");
  }

  bool loss_scaled() const { return plan_.step_options.precision() == models::Precision::kFp16; }
  // Only rank 0 of a data-parallel run writes (the ranks' weights are the same).
  bool writes_checkpoints() const { return !plan_.checkpoint_dir.empty() && (!plan_.group || plan_.group->rank() == 0); }

  // The sum over the ranks of `values` (themselves when there is one process).
  std::vector<double> SumOverRanks(std::vector<double> values, const char* what) {
    if (!plan_.group) return values;
    auto t = torch::from_blob(values.data(), {static_cast<int64_t>(values.size())}, torch::kFloat64).clone();
    plan_.group->AllReduce(t, distributed::ReduceOp::kSum, what);
    std::memcpy(values.data(), t.data_ptr<double>(), values.size() * sizeof(double));
    return values;
  }

  // Whether any rank was cancelled: every rank stops at the same batch.
  bool Cancelled() {
    const bool here = cancel_.load();
    if (!plan_.group) return here;
    return SumOverRanks({here ? 1.0 : 0.0}, "agreeing whether to stop")[0] > 0;
  }

  // An epoch's sums over the ranks (the seconds are this rank's). A resumed data-parallel run
  // carries the sums of its interrupted epoch on rank 0 only.
  Partial SumPartial(Partial p) {
    if (!plan_.group) return p;
    const auto total = SumOverRanks({p.loss_sum, static_cast<double>(p.correct), static_cast<double>(p.count), static_cast<double>(p.skipped)},
                                    "summing the epoch's metrics");
    p.loss_sum = total[0];
    p.correct = static_cast<int64_t>(total[1]);
    p.count = static_cast<int64_t>(total[2]);
    p.skipped = static_cast<int64_t>(total[3]);
    return p;
  }

  // The written checkpoint is complete before any rank goes on (and may resume from it).
  void AfterCheckpoint() {
    if (plan_.group && !plan_.checkpoint_dir.empty()) plan_.group->Barrier();
  }

  TunerResult Execute() {
    if (!plan_.resume.empty()) Resume(plan_.resume);
    // Every rank starts from rank 0's weights (after a resume they are already the same).
    if (plan_.group) replica_ = std::make_unique<distributed::DataParallel>(plan_.group, model_);
    if (writes_checkpoints()) {
      std::filesystem::create_directories(plan_.checkpoint_dir);
      // Temporaries of a writer that was killed mid-write (kill -9) go now, not never.
      for (const char* name : {"last.pth", "best.pth"}) RemoveStaleTemporaries(plan_.checkpoint_dir + "/" + name);
    }
    const int64_t resume_epoch = progress_.next_epoch, resume_batch = progress_.next_batch;
    int64_t epoch_start = 0;
    for (size_t index = 0; index < plan_.stages.size(); ++index) {
      const StagePlan& stage = plan_.stages[index];
      const int64_t stage_end = epoch_start + stage.epochs;
      if (resume_epoch >= stage_end) {
        epoch_start = stage_end;
        continue;
      }
      const int64_t first_epoch = std::max(epoch_start, resume_epoch);
      const int64_t start_batch = first_epoch == resume_epoch ? resume_batch : 0;
      ApplyStage(index);
      // A plateau's state belongs to its stage: a stage entered at its first batch starts afresh.
      if (first_epoch == epoch_start && start_batch == 0) progress_.plateau = PlateauState{};
      if (events_.on_stage) events_.on_stage({static_cast<int64_t>(index), stage.name, stage.trainable});
      progress_.stage = static_cast<int64_t>(index);
      progress_.stage_name = stage.name;
      for (int64_t e = first_epoch; e < stage_end; ++e) {
        const bool resumed = e == first_epoch && start_batch > 0;
        if (!RunEpoch(stage, e, epoch_start, resumed ? start_batch : 0, resumed ? progress_.partial : Partial{})) {
          return Result(true);
        }
        if (e + 1 < stage_end && Cancelled()) return Result(true);
      }
      epoch_start = stage_end;
      // Cancelled at the last epoch of a stage: the next stage has not started, so this is a stop too.
      if (index + 1 < plan_.stages.size() && Cancelled()) return Result(true);
    }
    return Result(false);
  }

 private:
  void Resume(const std::string& file) {
    TrainingCheckpoint checkpoint = ReadTrainingCheckpoint(file);
    Progress& saved = checkpoint.progress;
    CheckSameRun(saved.run, progress_.run);
    if (saved.next_epoch > TotalEpochs() || saved.next_batch >= train_.batch_count() ||
        saved.step != saved.next_epoch * train_.batch_count() + saved.next_batch) {
      throw CheckpointError(file + ": training.progress stands at epoch " + std::to_string(saved.next_epoch) + ", batch " +
                            std::to_string(saved.next_batch) + ", step " + std::to_string(saved.step) +
                            ", which is not a position of this run");
    }
    models::LoadStateDict(model_, checkpoint.model_state, /*strict=*/true);
    LoadStateByName(*optimizer_, plan_.optimizer_type, model_, checkpoint.optimizer_state);
    // Each rank continues its own random stream (dropout masks differ between ranks).
    const int64_t rank = plan_.group ? plan_.group->rank() : 0;
    const auto own = checkpoint.rank_rng_states.find(rank);
    if (rank > 0 && own != checkpoint.rank_rng_states.end()) {
      runtime::SetRngState(own->second);
    } else if (checkpoint.rng_state.defined()) {
      runtime::SetRngState(checkpoint.rng_state);
    }
    saved.run = progress_.run;
    progress_ = std::move(saved);
    if (rank != 0) {  // the saved partial sums are over all ranks: counted once
      const double seconds = progress_.partial.seconds;
      progress_.partial = Partial{};
      progress_.partial.seconds = seconds;
    }
    // An fp16 run continues with the loss scale it stopped at; a run that was not fp16 starts
    // scaling afresh.
    if (loss_scaled() && progress_.has_scaler) scaler_.set_state({progress_.scale, progress_.growth_tracker});
  }

  int64_t TotalEpochs() const {
    int64_t total = 0;
    for (const auto& s : plan_.stages) total += s.epochs;
    return total;
  }

  // Which parameters train in this stage, and the BatchNorms of frozen groups.
  void ApplyStage(size_t index) {
    const StagePlan& stage = plan_.stages[index];
    auto params = model_.named_parameters();
    for (auto& p : params) p.value().set_requires_grad(false);
    for (size_t g = 0; g < plan_.groups.size(); ++g) {
      if (!stage.trainable[g]) continue;
      for (const auto& name : plan_.groups[g].params()) params[name].set_requires_grad(true);
    }
    models::ApplyBatchNormPolicy(model_, plan_.freeze_batch_norm);
  }

  void SetLearningRates(const StagePlan& stage, int64_t row) {
    const size_t groups = plan_.groups.size();
    auto& param_groups = optimizer_->param_groups();
    const double scale = stage.plateau ? progress_.plateau.scale : 1;
    for (size_t g = 0; g < groups; ++g) {
      double lr = stage.lr_table[static_cast<size_t>(row) * groups + g];
      // PyTorch: lr = max(lr * factor, min_lr) at each reduction, never raised to min_lr.
      if (scale < 1) lr = std::min(lr, std::max(lr * scale, stage.plateau->min_lr));
      param_groups[g].options().set_lr(lr);
    }
  }

  // ReduceLROnPlateau.step(metric) at an epoch's end.
  void StepPlateau(const PlateauOptions& o, const EpochRecord& rec) {
    const double metric = o.monitor == "testLoss" ? rec.test_loss : o.monitor == "testTop1" ? rec.test_top1 : o.monitor == "trainAcc" ? rec.train_acc : rec.train_loss;
    PlateauState& st = progress_.plateau;
    const bool better = !st.has_best || (o.maximize ? metric > st.best * (1 + o.threshold) : metric < st.best * (1 - o.threshold));
    if (better) {
      st.best = metric;
      st.has_best = true;
      st.bad = 0;
    } else {
      ++st.bad;
    }
    if (st.cooldown > 0) {
      --st.cooldown;
      st.bad = 0;
    }
    if (st.bad > o.patience) {
      st.scale *= o.factor;
      st.cooldown = o.cooldown;
      st.bad = 0;
    }
  }

  // Every rank's generator state, by rank (a collective in a data-parallel run).
  std::vector<torch::Tensor> RngStates() {
    if (!plan_.group) return {runtime::RngState()};
    return plan_.group->AllGather(runtime::RngState());
  }

  void WriteCheckpoint(const std::string& name, const std::vector<torch::Tensor>& rng_states) {
    progress_.has_scaler = loss_scaled();
    progress_.scale = scaler_.state().scale;
    progress_.growth_tracker = scaler_.state().growth_tracker;
    std::vector<std::pair<std::string, models::NamedTensors>> sections;
    sections.emplace_back("model_state_dict", models::StateDict(model_));
    sections.emplace_back("optimizer_state", StateByName(*optimizer_, plan_.optimizer_type, model_));
    models::NamedTensors training{{"progress", BytesTensor(ProgressBytes(progress_))}, {"rng_state", rng_states.front()}};
    for (size_t r = 1; r < rng_states.size(); ++r) training.emplace_back("rng_state_rank" + std::to_string(r), rng_states[r]);
    sections.emplace_back("training", std::move(training));
    const auto bytes = models::EncodePthSections(sections);
    WriteFileAtomic(plan_.checkpoint_dir + "/" + name, bytes.data(), bytes.size());
  }

  // Epoch e (0-based, global) from batch `start`; false when cancelled before its end (a
  // checkpoint that resumes right after the last batch done is written then).
  bool RunEpoch(const StagePlan& stage, int64_t e, int64_t stage_start, int64_t start, Partial sums) {
    const int64_t table_start = stage_start * train_.batch_count();
    auto stream = train_.Epoch(e, start);
    const int64_t batches = stream->batch_count();
    const auto started = Clock::now();
    const double seconds_before = sums.seconds;
    int64_t images_here = 0;
    model_.ApplyTrainingMode(true);
    int64_t batch_index = start;
    const auto device = models::DeviceOf(model_);
    while (auto batch = stream->Next()) {
      ++batch_index;
      SetLearningRates(stage, stage.lr_per_step ? progress_.step - table_start : e - stage_start);
      auto x = batch->images.to(device, /*non_blocking=*/batch->images.is_pinned());
      StepResult r = TrainStep(model_, *optimizer_, x, batch->labels, plan_.step_options, &scaler_, replica_.get());
      ++progress_.step;
      sums.skipped += r.skipped;
      sums.loss_sum += r.loss * static_cast<double>(r.count);
      sums.correct += r.correct;
      sums.count += r.count;
      images_here += r.count;
      if (events_.on_batch && plan_.log_every > 0 && (batch_index % plan_.log_every == 0 || batch_index == batches)) {
        BatchEvent event{e + 1, batch_index, batches, r.loss, sums.loss_sum / static_cast<double>(sums.count), {}};
        const auto& groups = optimizer_->param_groups();
        for (size_t g = 0; g < groups.size(); ++g) event.lr.emplace_back(plan_.group_labels[g], groups[g].options().get_lr());
        events_.on_batch(event);
      }
      if (batch_index < batches && Cancelled()) {
        stream->Close();
        sums.seconds = seconds_before + Seconds(started);
        progress_.next_epoch = e;
        progress_.next_batch = batch_index;
        progress_.partial = SumPartial(sums);
        if (!plan_.checkpoint_dir.empty()) {
          const auto rng = RngStates();
          if (writes_checkpoints()) WriteCheckpoint("last.pth", rng);
          AfterCheckpoint();
          checkpoint_ = plan_.checkpoint_dir + "/last.pth";
        }
        return false;
      }
    }
    if (plan_.group) {
      sums = SumPartial(sums);
      images_here = static_cast<int64_t>(SumOverRanks({static_cast<double>(images_here)}, "summing the epoch's metrics")[0]);
    }
    EpochRecord rec;
    rec.stage = progress_.stage;
    rec.stage_name = stage.name;
    rec.epoch = e + 1;
    rec.train_loss = sums.count ? sums.loss_sum / static_cast<double>(sums.count) : 0;
    rec.train_acc = sums.count ? static_cast<double>(sums.correct) / static_cast<double>(sums.count) : 0;
    const auto& param_groups = optimizer_->param_groups();
    for (size_t g = 0; g < param_groups.size(); ++g) rec.lr.emplace_back(plan_.group_labels[g], param_groups[g].options().get_lr());
    const double train_seconds = Seconds(started);
    rec.images_per_second = train_seconds > 0 ? static_cast<double>(images_here) / train_seconds : 0;
    rec.loss_scaled = loss_scaled();
    if (rec.loss_scaled) {
      rec.skipped_steps = sums.skipped;
      rec.loss_scale = scaler_.state().scale;
    }
    if (test_ != nullptr) {
      EvalResult ev = Evaluate(model_, *test_, false, nullptr, plan_.step_options.precision());
      if (plan_.group) {  // each rank evaluated its share of the test set
        const auto total = SumOverRanks({ev.loss_sum, static_cast<double>(ev.count), static_cast<double>(ev.top1), static_cast<double>(ev.top5)},
                                        "summing the evaluation");
        ev.loss_sum = total[0];
        ev.count = static_cast<int64_t>(total[1]);
        ev.top1 = static_cast<int64_t>(total[2]);
        ev.top5 = static_cast<int64_t>(total[3]);
      }
      rec.has_test = true;
      rec.test_loss = ev.count ? ev.loss_sum / static_cast<double>(ev.count) : 0;
      rec.test_top1 = ev.count ? static_cast<double>(ev.top1) / static_cast<double>(ev.count) : 0;
      rec.test_top5 = ev.count ? static_cast<double>(ev.top5) / static_cast<double>(ev.count) : 0;
    }
    rec.seconds = seconds_before + Seconds(started);
    if (stage.plateau) StepPlateau(*stage.plateau, rec);
    const double metric = rec.has_test ? rec.test_top1 : rec.train_acc;
    const bool best = metric > progress_.best_metric;
    if (best) {
      progress_.best_metric = metric;
      progress_.best_epoch = rec.epoch;
    }
    progress_.records.push_back(rec);
    progress_.next_epoch = e + 1;
    progress_.next_batch = 0;
    progress_.partial = Partial{};
    if (!plan_.checkpoint_dir.empty()) {
      const auto rng = RngStates();
      if (writes_checkpoints()) {
        WriteCheckpoint("last.pth", rng);
        if (best) WriteCheckpoint("best.pth", rng);
      }
      AfterCheckpoint();
      checkpoint_ = plan_.checkpoint_dir + "/last.pth";
    }
    if (events_.on_epoch) events_.on_epoch(rec);
    return true;
  }

  TunerResult Result(bool cancelled) {
    TunerResult out;
    out.cancelled = cancelled;
    out.records = progress_.records;
    out.best_metric = progress_.best_metric;
    out.best_epoch = progress_.best_epoch;
    out.checkpoint = checkpoint_;
    if (!plan_.checkpoint_dir.empty() && progress_.best_epoch > 0) out.best_checkpoint = plan_.checkpoint_dir + "/best.pth";
    return out;
  }

  models::ModelImpl& model_;
  const data::Loader& train_;
  const data::Loader* test_;
  const TunerPlan& plan_;
  const std::atomic<bool>& cancel_;
  const TunerEvents& events_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  GradScaler scaler_;
  std::unique_ptr<distributed::DataParallel> replica_;  // data-parallel runs only
  Progress progress_;
  std::string checkpoint_;
};

}  // namespace

TrainingCheckpoint ReadTrainingCheckpoint(const std::string& file) {
  const char* lacks = " is not a torch-attn training checkpoint (it lacks model_state_dict, optimizer_state or training.progress)";
  std::vector<std::pair<std::string, models::NamedTensors>> sections;
  try {
    sections = models::ReadPthSections(file);
  } catch (const CheckpointError& e) {
    // The reader names the file first; say what it is not, then why.
    std::string why = e.what();
    if (why.rfind(file + " ", 0) == 0) why = why.substr(file.size() + 1);
    throw CheckpointError(file + " is not a torch-attn training checkpoint (" + why + ")");
  }
  TrainingCheckpoint out;
  bool has_model = false, has_optimizer = false, has_progress = false;
  for (auto& [name, tensors] : sections) {
    if (name == "model_state_dict") {
      out.model_state = std::move(tensors);
      has_model = true;
    } else if (name == "optimizer_state") {
      out.optimizer_state = std::move(tensors);
      has_optimizer = true;
    } else if (name == "training") {
      for (auto& [key, t] : tensors) {
        if (key == "rng_state") out.rng_state = t;
        if (key.rfind("rng_state_rank", 0) == 0) {
          const std::string digits = key.substr(14);
          if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos) {
            throw CheckpointError(file + ": training." + key + " is not a rank's random state");
          }
          out.rank_rng_states[std::stoll(digits)] = t;
        }
        if (key != "progress") continue;
        out.progress = ParseProgress(TensorBytes(t), file);
        has_progress = true;
      }
    }
  }
  if (!has_model || !has_optimizer || !has_progress) throw CheckpointError(file + lacks);
  return out;
}

void CheckPlan(const TunerPlan& plan, const models::ModelImpl& model, int64_t batches_per_epoch) {
  const size_t groups = plan.groups.size();
  if (groups == 0) throw RangeError("fineTune plan: no parameter groups");
  if (plan.group_labels.size() != groups) {
    throw RangeError("fineTune plan: " + std::to_string(plan.group_labels.size()) + " group labels for " + std::to_string(groups) + " groups");
  }
  if (plan.stages.empty()) throw RangeError("fineTune plan: no stages");
  std::unordered_set<std::string> seen;
  auto params = model.named_parameters();
  for (const auto& g : plan.groups) {
    for (const auto& name : g.params()) {
      if (params.find(name) == nullptr) throw RangeError("fineTune plan: '" + name + "' is not a parameter of " + model.Describe());
      if (!seen.insert(name).second) throw RangeError("fineTune plan: '" + name + "' is in two groups");
    }
  }
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const auto& s = plan.stages[i];
    const std::string where = "fineTune plan: stages[" + std::to_string(i) + "]";
    if (s.epochs < 1) throw RangeError(where + ".epochs must be at least 1");
    if (s.trainable.size() != groups) throw RangeError(where + ".trainable must have one entry per group (" + std::to_string(groups) + ")");
    const auto rows = static_cast<size_t>(s.lr_per_step ? s.epochs * batches_per_epoch : s.epochs);
    if (s.lr_table.size() != rows * groups) {
      throw RangeError(where + ".lrTable must have " + std::to_string(rows * groups) + " rates (" + std::to_string(rows) +
                       (s.lr_per_step ? " steps" : " epochs") + " x " + std::to_string(groups) + " groups), got " +
                       std::to_string(s.lr_table.size()));
    }
    for (double lr : s.lr_table) {
      if (!std::isfinite(lr) || lr < 0) throw RangeError(where + ".lrTable: learning rates must be finite and non-negative");
    }
    if (s.plateau) {
      const auto& p = *s.plateau;
      if (p.monitor != "testLoss" && p.monitor != "testTop1" && p.monitor != "trainLoss" && p.monitor != "trainAcc") {
        throw RangeError(where + ".plateau.monitor must be 'testLoss', 'testTop1', 'trainLoss' or 'trainAcc', got '" + p.monitor + "'");
      }
      if (!(p.factor > 0 && p.factor < 1)) throw RangeError(where + ".plateau.factor must be in (0, 1)");
      if (!std::isfinite(p.threshold) || p.threshold < 0 || !std::isfinite(p.min_lr) || p.min_lr < 0 || p.patience < 0 || p.cooldown < 0) {
        throw RangeError(where + ".plateau: threshold, minLr, patience and cooldown must be finite and non-negative");
      }
    }
  }
}

TunerResult RunFineTune(models::ModelImpl& model, const data::Loader& train, const data::Loader* test,
                        const TunerPlan& plan, const std::atomic<bool>& cancel, const TunerEvents& events) {
  runtime::ApplyNumThreads();
  CheckPlan(plan, model, train.batch_count());
  for (const auto& s : plan.stages) {
    if (s.plateau && test == nullptr && s.plateau->monitor.rfind("test", 0) == 0) {
      throw RangeError("fineTune: stage '" + s.name + "' reduces its rates on plateaus of " + s.plateau->monitor +
                       ", which needs a test set; pass one to fit() or monitor 'trainLoss'");
    }
  }
  Run run(model, train, test, plan, cancel, events);
  return run.Execute();
}

}  // namespace torch_attn::training
