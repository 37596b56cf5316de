#include "training/progress.h"

#include <cmath>
#include <limits>

#include "common/errors.h"

namespace torch_attn::training {

namespace {

// Non-finite numbers are written as null (JSON has no NaN) and read back as NaN.
double Number(const Json& v) { return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>(); }
double Number(const Json& j, const char* key) { return Number(j.at(key)); }

}  // namespace

void to_json(Json& j, const EpochRecord& r) {
  j = Json{{"stage", r.stage_name}, {"stageIndex", r.stage}, {"epoch", r.epoch}, {"trainLoss", r.train_loss}, {"trainAcc", r.train_acc}};
  if (r.has_test) {
    j["testLoss"] = r.test_loss;
    j["testTop1"] = r.test_top1;
    j["testTop5"] = r.test_top5;
  }
  Json lr = Json::object();
  for (const auto& [label, rate] : r.lr) lr[label] = rate;
  j["lr"] = std::move(lr);
  j["seconds"] = r.seconds;
  j["imagesPerSecond"] = r.images_per_second;
  if (r.loss_scaled) {
    j["skippedSteps"] = r.skipped_steps;
    j["lossScale"] = r.loss_scale;
  }
}

void from_json(const Json& j, EpochRecord& r) {
  j.at("stage").get_to(r.stage_name);
  j.at("stageIndex").get_to(r.stage);
  j.at("epoch").get_to(r.epoch);
  r.train_loss = Number(j, "trainLoss");
  r.train_acc = Number(j, "trainAcc");
  r.has_test = j.contains("testTop1");
  if (r.has_test) {
    r.test_loss = Number(j, "testLoss");
    r.test_top1 = Number(j, "testTop1");
    r.test_top5 = Number(j, "testTop5");
  }
  r.lr.clear();
  for (const auto& [label, rate] : j.at("lr").items()) r.lr.emplace_back(label, Number(rate));
  r.seconds = Number(j, "seconds");
  r.images_per_second = Number(j, "imagesPerSecond");
  r.loss_scaled = j.contains("skippedSteps");
  if (r.loss_scaled) {
    j.at("skippedSteps").get_to(r.skipped_steps);
    r.loss_scale = Number(j, "lossScale");
  }
}

void to_json(Json& j, const Partial& p) {
  j = Json{{"lossSum", p.loss_sum}, {"correct", p.correct}, {"count", p.count}, {"seconds", p.seconds}};
  if (p.skipped > 0) j["skipped"] = p.skipped;
}

void from_json(const Json& j, Partial& p) {
  p.loss_sum = Number(j, "lossSum");
  j.at("correct").get_to(p.correct);
  j.at("count").get_to(p.count);
  p.seconds = Number(j, "seconds");
  p.skipped = j.value("skipped", int64_t{0});
}

void to_json(Json& j, const RunIdentity& r) {
  Json stages = Json::array();
  for (const auto& [name, epochs] : r.stages) stages.push_back(Json::array({name, epochs}));
  j = Json{{"version", r.version}, {"seed", r.seed}, {"batchesPerEpoch", r.batches_per_epoch}, {"groups", r.groups}, {"stages", std::move(stages)}, {"optimizer", r.optimizer}};
}

void from_json(const Json& j, RunIdentity& r) {
  j.at("version").get_to(r.version);
  // Written by JavaScript before 0.2 (a Number), by nlohmann since: either form reads back.
  const Json& seed = j.at("seed");
  r.seed = seed.is_number_float() ? static_cast<uint64_t>(seed.get<double>()) : seed.get<uint64_t>();
  j.at("batchesPerEpoch").get_to(r.batches_per_epoch);
  j.at("groups").get_to(r.groups);
  r.stages.clear();
  for (const auto& s : j.at("stages")) r.stages.emplace_back(s.at(0).get<std::string>(), s.at(1).get<int64_t>());
  j.at("optimizer").get_to(r.optimizer);
}

void to_json(Json& j, const Progress& p) {
  j = Json{{"version", p.version}, {"stage", p.stage}, {"stageName", p.stage_name}, {"nextEpoch", p.next_epoch},
           {"nextBatch", p.next_batch}, {"step", p.step}, {"partial", p.partial},
           {"best", Json{{"metric", p.best_metric}, {"epoch", p.best_epoch}}}, {"run", p.run}, {"records", p.records}};
  if (p.has_scaler) j["scaler"] = Json{{"scale", p.scale}, {"growthTracker", p.growth_tracker}};
  const PlateauState& pl = p.plateau;
  if (pl.scale != 1 || pl.has_best) {
    j["plateau"] = Json{{"scale", pl.scale}, {"bad", pl.bad}, {"cooldown", pl.cooldown}};
    if (pl.has_best) j["plateau"]["best"] = pl.best;
  }
}

void from_json(const Json& j, Progress& p) {
  j.at("version").get_to(p.version);
  j.at("stage").get_to(p.stage);
  j.at("stageName").get_to(p.stage_name);
  j.at("nextEpoch").get_to(p.next_epoch);
  j.at("nextBatch").get_to(p.next_batch);
  j.at("step").get_to(p.step);
  j.at("partial").get_to(p.partial);
  p.best_metric = Number(j.at("best"), "metric");
  j.at("best").at("epoch").get_to(p.best_epoch);
  j.at("run").get_to(p.run);
  j.at("records").get_to(p.records);
  p.has_scaler = j.contains("scaler");
  if (p.has_scaler) {
    p.scale = Number(j.at("scaler"), "scale");
    j.at("scaler").at("growthTracker").get_to(p.growth_tracker);
  }
  if (j.contains("plateau")) {
    const Json& pl = j.at("plateau");
    p.plateau.scale = Number(pl, "scale");
    pl.at("bad").get_to(p.plateau.bad);
    pl.at("cooldown").get_to(p.plateau.cooldown);
    p.plateau.has_best = pl.contains("best");
    if (p.plateau.has_best) p.plateau.best = Number(pl, "best");
  }
}

std::string ProgressBytes(const Progress& progress) { return Json(progress).dump(); }

Progress ParseProgress(const std::string& bytes, const std::string& where) {
  Progress p;
  try {
    Json::parse(bytes).get_to(p);
  } catch (const Json::exception& e) {
    throw CheckpointError(where + ": training.progress is not a torch-attn progress record (" + e.what() + ")");
  }
  if (p.version != 1 || p.run.version != 1) {
    throw CheckpointError(where + ": training.progress has version " + std::to_string(p.version) + ", this torch-attn reads version 1");
  }
  if (p.next_epoch < 0 || p.next_batch < 0 || p.step < 0 || p.partial.count < 0 || p.partial.correct < 0) {
    throw CheckpointError(where + ": training.progress holds negative positions or counts");
  }
  const PlateauState& pl = p.plateau;
  if (!(pl.scale > 0 && pl.scale <= 1) || pl.bad < 0 || pl.cooldown < 0 || (pl.has_best && !std::isfinite(pl.best))) {
    throw CheckpointError(where + ": training.progress holds a plateau state out of range (scale in (0, 1], counts >= 0, a finite best)");
  }
  return p;
}

void CheckSameRun(const RunIdentity& saved, const RunIdentity& now) {
  const Json a = saved, b = now;
  for (const char* key : {"seed", "batchesPerEpoch", "groups", "stages", "optimizer"}) {
    if (a.at(key) != b.at(key)) {
      throw CheckpointError(std::string("resume: the checkpoint was written by a run with another ") + key + " (" + a.at(key).dump() + ", now " + b.at(key).dump() + ")");
    }
  }
}

}  // namespace torch_attn::training
