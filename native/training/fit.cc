#include "training/fit.h"

#include <chrono>
#include <cstring>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "common/errors.h"
#include "common/files.h"
#include "models/state_dict.h"
#include "runtime/runtime.h"
#include "training/optimizer.h"

namespace torch_attn::training {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream out;
  out << std::setprecision(17) << v;
  return out.str();
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void SetLearningRates(torch::optim::Optimizer& optimizer, const FitPlan& plan, int64_t step) {
  const int64_t groups = static_cast<int64_t>(plan.group_labels.size());
  const int64_t row = step - plan.table_start;
  if (row < 0 || (row + 1) * groups > static_cast<int64_t>(plan.lr_table.size())) {
    throw RangeError("fit: the learning-rate table has no row for step " + std::to_string(step));
  }
  auto& param_groups = optimizer.param_groups();
  for (int64_t g = 0; g < groups; ++g) {
    param_groups[static_cast<size_t>(g)].options().set_lr(plan.lr_table[static_cast<size_t>(row * groups + g)]);
  }
}

std::vector<double> CurrentRates(torch::optim::Optimizer& optimizer) {
  std::vector<double> out;
  for (auto& group : optimizer.param_groups()) out.push_back(group.options().get_lr());
  return out;
}

torch::Tensor BytesTensor(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
  return t;
}

// One checkpoint: the model's state dict (what PyTorch loads), the optimizer's state by
// parameter name, and the run's progress (JSON) with the RNG state, in one .pth file.
void WriteCheckpoint(const std::string& path, models::ModelImpl& model, torch::optim::Optimizer& optimizer,
                     const std::string& optimizer_type, const std::string& progress_json) {
  const torch::Tensor rng = runtime::RngState();
  std::vector<std::pair<std::string, models::NamedTensors>> sections;
  sections.emplace_back("model_state_dict", models::StateDict(model));
  sections.emplace_back("optimizer_state", StateByName(optimizer, optimizer_type, model));
  sections.emplace_back("training", models::NamedTensors{{"progress", BytesTensor(progress_json)}, {"rng_state", rng}});
  const auto bytes = models::EncodePthSections(sections);
  WriteFileAtomic(path, bytes.data(), bytes.size());
}

std::string ProgressJson(const FitPlan& plan, const std::string& records_json, int64_t next_epoch, int64_t next_batch,
                         int64_t step, const Partial& partial, double best_metric, int64_t best_epoch) {
  std::ostringstream o;
  o << "{\"version\":1,\"stage\":" << plan.stage << ",\"stageName\":" << Quote(plan.stage_name)
    << ",\"nextEpoch\":" << next_epoch << ",\"nextBatch\":" << next_batch << ",\"step\":" << step
    << ",\"partial\":{\"lossSum\":" << Num(partial.loss_sum) << ",\"correct\":" << partial.correct
    << ",\"count\":" << partial.count << ",\"seconds\":" << Num(partial.seconds) << "}"
    << ",\"best\":{\"metric\":" << Num(best_metric) << ",\"epoch\":" << best_epoch << "}"
    << ",\"run\":" << plan.run_json << ",\"records\":" << records_json << "}";
  return o.str();
}

}  // namespace

std::string EpochRecord::ToJson(const std::vector<std::string>& group_labels) const {
  std::ostringstream o;
  o << "{\"stage\":" << Quote(stage_name) << ",\"stageIndex\":" << stage << ",\"epoch\":" << epoch
    << ",\"trainLoss\":" << Num(train_loss) << ",\"trainAcc\":" << Num(train_acc);
  if (has_test) {
    o << ",\"testLoss\":" << Num(test_loss) << ",\"testTop1\":" << Num(test_top1) << ",\"testTop5\":" << Num(test_top5);
  }
  o << ",\"lr\":{";
  for (size_t g = 0; g < lr.size(); ++g) o << (g ? "," : "") << Quote(group_labels[g]) << ":" << Num(lr[g]);
  o << "},\"seconds\":" << Num(seconds) << ",\"imagesPerSecond\":" << Num(images_per_second) << "}";
  return o.str();
}

EvalResult Evaluate(models::ModelImpl& model, const data::Loader& loader, bool keep_probabilities,
                    const std::atomic<bool>* cancel) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.ApplyTrainingMode(false);
  EvalResult r;
  try {
    auto stream = loader.Epoch(0);
    while (auto batch = stream->Next()) {
      if (cancel != nullptr && cancel->load()) break;
      auto x = batch->images.to(model.parameters().front().device());
      auto logits = model.Forward(x, nullptr);
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
    }
  } catch (...) {
    model.ApplyTrainingMode(was_training);
    throw;
  }
  model.ApplyTrainingMode(was_training);
  return r;
}

FitOutcome RunStage(models::ModelImpl& model, torch::optim::Optimizer& optimizer, const data::Loader& train,
                    const data::Loader* test, const FitPlan& plan, const std::atomic<bool>& cancel,
                    const FitCallbacks& callbacks) {
  runtime::ApplyNumThreads();
  FitOutcome out;
  out.step = plan.step;
  out.best_metric = plan.best_metric;
  out.best_epoch = plan.best_epoch;
  std::string records_json = plan.history_json;  // "[...]"
  auto append_record = [&](const EpochRecord& rec) {
    const std::string item = rec.ToJson(plan.group_labels);
    records_json = records_json == "[]" ? "[" + item + "]" : records_json.substr(0, records_json.size() - 1) + "," + item + "]";
  };
  auto path = [&](const char* name) { return plan.checkpoint_dir + "/" + name; };

  for (int64_t e = plan.first_epoch; e < plan.first_epoch + plan.epochs; ++e) {
    const bool resumed = e == plan.first_epoch && plan.start_batch > 0;
    Partial sums = resumed ? plan.partial : Partial{};
    const int64_t start_batch = resumed ? plan.start_batch : 0;
    auto stream = train.Epoch(e, start_batch);
    const int64_t batches = stream->batch_count();
    const auto started = Clock::now();
    const double seconds_before = sums.seconds;
    int64_t images_here = 0;
    model.ApplyTrainingMode(true);
    int64_t batch_index = start_batch;
    while (auto batch = stream->Next()) {
      ++batch_index;
      SetLearningRates(optimizer, plan, out.step);
      auto x = batch->images.to(model.parameters().front().device());
      StepResult r = TrainStep(model, optimizer, x, batch->labels, plan.step_options);
      ++out.step;
      sums.loss_sum += r.loss * static_cast<double>(r.count);
      sums.correct += r.correct;
      sums.count += r.count;
      images_here += r.count;
      if (callbacks.on_batch && plan.log_every > 0 && (batch_index % plan.log_every == 0 || batch_index == batches)) {
        callbacks.on_batch({e + 1, batch_index, batches, r.loss, sums.loss_sum / static_cast<double>(sums.count)});
      }
      if (cancel.load() && batch_index < batches) {
        // Stop at this batch boundary with a checkpoint that resumes right after it.
        stream->Close();
        sums.seconds = seconds_before + Seconds(started);
        out.cancelled = true;
        out.next_epoch = e;
        out.next_batch = batch_index;
        if (!plan.checkpoint_dir.empty()) {
          out.checkpoint = path("last.pth");
          WriteCheckpoint(out.checkpoint, model, optimizer, plan.optimizer_type,
                          ProgressJson(plan, records_json, e, batch_index, out.step, sums, out.best_metric, out.best_epoch));
        }
        return out;
      }
    }
    EpochRecord rec;
    rec.stage = plan.stage;
    rec.stage_name = plan.stage_name;
    rec.epoch = e + 1;
    rec.train_loss = sums.count ? sums.loss_sum / static_cast<double>(sums.count) : 0;
    rec.train_acc = sums.count ? static_cast<double>(sums.correct) / static_cast<double>(sums.count) : 0;
    rec.lr = CurrentRates(optimizer);
    const double train_seconds = Seconds(started);
    rec.images_per_second = train_seconds > 0 ? static_cast<double>(images_here) / train_seconds : 0;
    if (test != nullptr) {
      EvalResult ev = Evaluate(model, *test, false, nullptr);
      rec.has_test = true;
      rec.test_loss = ev.count ? ev.loss_sum / static_cast<double>(ev.count) : 0;
      rec.test_top1 = ev.count ? static_cast<double>(ev.top1) / static_cast<double>(ev.count) : 0;
      rec.test_top5 = ev.count ? static_cast<double>(ev.top5) / static_cast<double>(ev.count) : 0;
    }
    rec.seconds = seconds_before + Seconds(started);
    const double metric = rec.has_test ? rec.test_top1 : rec.train_acc;
    const bool best = metric > out.best_metric;
    if (best) {
      out.best_metric = metric;
      out.best_epoch = rec.epoch;
    }
    append_record(rec);
    out.records.push_back(rec);
    if (!plan.checkpoint_dir.empty()) {
      const std::string progress =
          ProgressJson(plan, records_json, e + 1, 0, out.step, Partial{}, out.best_metric, out.best_epoch);
      out.checkpoint = path("last.pth");
      WriteCheckpoint(out.checkpoint, model, optimizer, plan.optimizer_type, progress);
      if (best) WriteCheckpoint(path("best.pth"), model, optimizer, plan.optimizer_type, progress);
    }
    if (callbacks.on_epoch) callbacks.on_epoch(rec);
    out.next_epoch = e + 1;
    out.next_batch = 0;
    if (cancel.load() && e + 1 < plan.first_epoch + plan.epochs) {
      out.cancelled = true;
      return out;
    }
  }
  return out;
}

}  // namespace torch_attn::training
