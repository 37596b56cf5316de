#include "distributed/data_parallel.h"

#include <torch/csrc/distributed/c10d/reducer.hpp>

#include "distributed/group.h"
#include "models/model.h"

namespace torch_attn::distributed {

namespace {

// DDP's defaults: 25 MiB buckets, the first one 1 MiB (its gradients are ready first).
constexpr size_t kBucketBytes = size_t{25} << 20;
constexpr size_t kFirstBucketBytes = size_t{1} << 20;

std::vector<torch::Tensor> Detached(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.push_back(t.detach());
  return out;
}

}  // namespace

DataParallel::DataParallel(std::shared_ptr<Group> group, models::ModelImpl& model) : group_(std::move(group)), model_(model) {
  // DDP's _sync_module_states: every rank starts from rank 0's parameters and buffers.
  auto states = Detached(model_.parameters());
  for (auto& b : Detached(model_.buffers())) states.push_back(b);
  group_->BroadcastCoalesced(states, 0, "broadcasting rank 0's parameters and buffers");
}

DataParallel::~DataParallel() = default;

void DataParallel::BuildReducer() {
  reducer_.reset();  // its autograd hooks go with it
  std::vector<torch::Tensor> params;
  trainable_.clear();
  for (const auto& p : model_.parameters()) {
    trainable_.push_back(p.requires_grad());
    if (p.requires_grad()) params.push_back(p);
  }
  // As DistributedDataParallel builds it: buckets assigned by size in reverse parameter order
  // (gradients arrive roughly in reverse), no sparse gradients, every parameter used.
  const std::vector<bool> sparse(params.size(), false);
  auto assignment = c10d::compute_bucket_assignment_by_size(params, {kFirstBucketBytes, kBucketBytes}, sparse);
  auto& buckets = std::get<0>(assignment);
  auto& limits = std::get<1>(assignment);
  std::reverse(buckets.begin(), buckets.end());
  std::reverse(limits.begin(), limits.end());
  group_->Guard("setting up gradient averaging", [&] {
    reducer_ = std::make_unique<c10d::Reducer>(params, buckets, limits, group_->backend(), sparse, static_cast<int64_t>(kBucketBytes),
                                               /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false,
                                               std::unordered_map<size_t, std::string>{}, static_cast<int64_t>(kFirstBucketBytes));
  });
}

void DataParallel::BeforeForward() {
  bool same = static_cast<bool>(reducer_);
  if (same) {
    size_t i = 0;
    for (const auto& p : model_.parameters()) same = same && i < trainable_.size() && trainable_[i++] == p.requires_grad();
  }
  if (!same) BuildReducer();
  group_->Guard("the start of a data-parallel step", [&] {
    reducer_->prepare_for_forward();
    reducer_->rebuild_buckets();  // once, after the first step: buckets in the order gradients came
  });
  group_->BroadcastCoalesced(Detached(model_.buffers()), 0, "broadcasting rank 0's buffers before the forward");
}

modules::SumOverRanks DataParallel::BatchNormSum() const {
  return [group = group_](torch::Tensor& t) { group->AllReduce(t, ReduceOp::kSum, "synchronising BatchNorm statistics (syncBatchNorm)"); };
}

void DataParallel::AfterForward() {
  group_->Guard("the start of a data-parallel step", [&] { reducer_->prepare_for_backward({}); });
}

void DataParallel::Backward(const torch::Tensor& loss) {
  group_->Guard("averaging gradients (backward)", [&] { loss.backward(); });
}

}  // namespace torch_attn::distributed
