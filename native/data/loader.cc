#include "data/loader.h"

#include <algorithm>
#include <numeric>

#include "common/errors.h"
#include "data/rng.h"

namespace torch_attn::data {

std::vector<int64_t> EpochOrder(int64_t size, bool shuffle, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(size));
  std::iota(order.begin(), order.end(), 0);
  if (shuffle) {
    Rng rng(MixSeed(seed, static_cast<uint64_t>(epoch), 0x5eedULL));
    for (int64_t i = size - 1; i > 0; --i) std::swap(order[i], order[rng.Below(static_cast<uint64_t>(i + 1))]);
  }
  return order;
}

std::vector<int64_t> ShardOrder(const std::vector<int64_t>& order, int64_t shard_rank, int64_t shard_count) {
  if (shard_count == 1) return order;
  const int64_t n = static_cast<int64_t>(order.size()), per = ShardSize(n, shard_count);
  std::vector<int64_t> out(static_cast<size_t>(per));
  for (int64_t i = 0; i < per; ++i) out[static_cast<size_t>(i)] = order[static_cast<size_t>((shard_rank + i * shard_count) % n)];
  return out;
}

int64_t ShardSize(int64_t size, int64_t shard_count) { return (size + shard_count - 1) / shard_count; }

uint64_t SampleSeed(uint64_t seed, int64_t epoch, int64_t index) {
  return MixSeed(seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index));
}

Loader::Loader(TransformedDataset data, LoaderOptions options) : data_(std::move(data)), options_(options) {
  if (options_.batch_size < 1) throw RangeError("DataLoader: batchSize must be at least 1");
  if (!data_.transform->GivesFloat()) {
    throw RangeError("DataLoader: batches are float tensors: end the dataset's transform with toTensor() "
                     "(and normalize(...)), e.g. dataset.withTransform(transforms.compose([transforms.toTensor()]))");
  }
  if (data_.size() == 0) throw RangeError("DataLoader: the dataset is empty");
  if (options_.shard_count < 1 || options_.shard_rank < 0 || options_.shard_rank >= options_.shard_count) {
    throw RangeError("DataLoader: shard rank " + std::to_string(options_.shard_rank) + " of " + std::to_string(options_.shard_count) + " is not a rank of the group");
  }
  if (options_.pin_memory && !at::hasCUDA()) {
    throw RangeError("DataLoader: pinMemory needs CUDA (page-locked memory only speeds up copies to a GPU); this process has none");
  }
}

namespace {

// Batches of `samples` (a rank's share of an epoch).
int64_t BatchesOf(int64_t samples, const LoaderOptions& o) {
  return o.drop_last ? samples / o.batch_size : (samples + o.batch_size - 1) / o.batch_size;
}

}  // namespace

int64_t Loader::batch_count() const { return BatchesOf(ShardSize(data_.size(), options_.shard_count), options_); }

BatchStream::BatchStream(TransformedDataset data, LoaderOptions options, int64_t epoch, int64_t start)
    : data_(std::move(data)), options_(options), epoch_(epoch) {
  order_ = ShardOrder(EpochOrder(data_.size(), options_.shuffle, options_.seed, epoch), options_.shard_rank, options_.shard_count);
  batches_ = BatchesOf(static_cast<int64_t>(order_.size()), options_);
  if (options_.prefetch <= 0) options_.prefetch = 2 * std::max<int64_t>(options_.workers, 1);
  next_to_make_ = next_to_take_ = std::min(std::max<int64_t>(start, 0), batches_);
  for (int64_t i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { Work(); });
}

BatchStream::~BatchStream() { Close(); }

void BatchStream::Close() {
  Stop();
  Join();
}

void BatchStream::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
  }
  can_make_.notify_all();
  can_take_.notify_all();
}

void BatchStream::Join() {
  std::lock_guard<std::mutex> lock(join_mutex_);
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

std::optional<Batch> BatchStream::Make(int64_t batch) const {
  const int64_t begin = batch * options_.batch_size;
  const int64_t end = std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order_.size()));
  Batch out;
  out.index = batch;
  out.labels = torch::empty({end - begin}, torch::kInt64);
  auto* labels = out.labels.data_ptr<int64_t>();
  std::vector<int64_t> shape;
  for (int64_t i = begin; i < end; ++i) {
    if (closed_) return std::nullopt;  // closed meanwhile: no half-made batch leaves here
    const int64_t index = order_[static_cast<size_t>(i)];
    Sample s = data_.Get(index, SampleSeed(options_.seed, epoch_, index));
    const FloatImage& t = s.tensor;
    std::vector<int64_t> sample_shape = {t.channels, t.height, t.width};
    if (i == begin) {
      shape = sample_shape;
      out.images = torch::empty({end - begin, t.channels, t.height, t.width},
                                torch::TensorOptions(torch::kFloat32).pinned_memory(options_.pin_memory));
    } else if (sample_shape != shape) {
      auto str = [](const std::vector<int64_t>& v) {
        return std::to_string(v[0]) + "x" + std::to_string(v[1]) + "x" + std::to_string(v[2]);
      };
      throw RangeError("DataLoader: sample " + std::to_string(index) + " is " + str(sample_shape) + " but sample " +
                       std::to_string(order_[static_cast<size_t>(begin)]) + " in the same batch is " + str(shape) +
                       "; give the transform a fixed output size (resize + centerCrop, or randomResizedCrop)");
    }
    std::copy(t.values.begin(), t.values.end(), out.images.data_ptr<float>() + (i - begin) * t.values.size());
    labels[i - begin] = s.label;
  }
  return out;
}

void BatchStream::Work() {
  for (;;) {
    int64_t batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      can_make_.wait(lock, [&] {
        return closed_ || failed_ || next_to_make_ >= batches_ || next_to_make_ < next_to_take_ + options_.prefetch;
      });
      if (closed_ || failed_ || next_to_make_ >= batches_) return;
      batch = next_to_make_++;
    }
    try {
      std::optional<Batch> made = Make(batch);
      if (!made) return;  // closed
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(batch, std::move(*made));
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      errors_.emplace(batch, std::current_exception());
      failed_ = true;
    }
    can_take_.notify_all();
  }
}

std::optional<Batch> BatchStream::Next() {
  if (options_.workers == 0) {
    if (closed_ || next_to_take_ >= batches_) return std::nullopt;
    return Make(next_to_take_++);  // nullopt when closed meanwhile
  }
  std::unique_lock<std::mutex> lock(mutex_);
  const int64_t want = next_to_take_;
  if (want >= batches_) return std::nullopt;
  can_take_.wait(lock, [&] { return closed_ || ready_.count(want) || errors_.count(want) || (failed_ && errors_.begin()->first < want); });
  if (closed_) return std::nullopt;
  if (!ready_.count(want)) {
    auto error = errors_.count(want) ? errors_[want] : errors_.begin()->second;
    next_to_take_ = batches_;
    std::rethrow_exception(error);
  }
  Batch out = std::move(ready_[want]);
  ready_.erase(want);
  ++next_to_take_;
  lock.unlock();
  can_make_.notify_all();
  return out;
}

}  // namespace torch_attn::data
