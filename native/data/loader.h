// The batch loader: worker threads run dataset loading and transforms, a bounded reorder
// buffer hands batches to the consumer in order. One BatchStream is one epoch; the consumer
// is a libuv thread (JS iteration) or the native trainer, never the JS main thread.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/dataset.h"

namespace torch_attn::data {

struct LoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;
  int64_t workers = 0;   // 0: batches are made on the consumer's thread
  int64_t prefetch = 0;  // batches made ahead of the consumer; 0: 2 per worker
  uint64_t seed = 0;
  bool pin_memory = false;  // batches in page-locked memory, for non-blocking copies to a GPU (CUDA only)
  // Data parallelism, as PyTorch's DistributedSampler: every rank orders the epoch the same way,
  // the order is padded (from its start) to a multiple of shard_count, and rank r takes its
  // positions r, r + shard_count, ... Batches are then made of the rank's share.
  int64_t shard_rank = 0, shard_count = 1;
};

struct Batch {
  torch::Tensor images;  // float32 [B, C, H, W]
  torch::Tensor labels;  // int64 [B]
  int64_t index = 0;
};

// The order of sample indices for one epoch (a permutation when shuffling).
std::vector<int64_t> EpochOrder(int64_t size, bool shuffle, uint64_t seed, int64_t epoch);
// This rank's share of an epoch's order (all of it when shard_count is 1).
std::vector<int64_t> ShardOrder(const std::vector<int64_t>& order, int64_t shard_rank, int64_t shard_count);
// The samples in each rank's share of `size`: size / count rounded up (the padding repeats samples).
int64_t ShardSize(int64_t size, int64_t shard_count);
// The seed of one sample's transform: a function of (loader seed, epoch, dataset index) only.
uint64_t SampleSeed(uint64_t seed, int64_t epoch, int64_t index);

class BatchStream {
 public:
  // Starts at batch `start` of the epoch (the ones before it are never made: a resumed epoch).
  BatchStream(TransformedDataset data, LoaderOptions options, int64_t epoch, int64_t start = 0);
  ~BatchStream();
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;

  int64_t batch_count() const { return batches_; }
  // The next batch, in order, or nullopt after the last (or after Close). Rethrows the error
  // of a batch that failed. One consumer at a time.
  std::optional<Batch> Next();
  // Stops the workers (they finish the sample in hand) and joins them.
  void Close();
  // The two halves of Close: Stop only asks (cheap, for the JS thread); Join waits.
  void Stop();
  void Join();

 private:
  // The batch, or nullopt when the stream was closed while it was being made (a partial batch
  // would have rows of uninitialised memory).
  std::optional<Batch> Make(int64_t batch) const;
  void Work();

  TransformedDataset data_;
  LoaderOptions options_;
  int64_t epoch_;
  std::vector<int64_t> order_;
  int64_t batches_;

  std::mutex mutex_;
  std::condition_variable can_make_, can_take_;
  int64_t next_to_make_ = 0, next_to_take_ = 0;
  std::atomic<bool> closed_{false};
  bool failed_ = false;
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> errors_;
  std::vector<std::thread> threads_;
  std::mutex join_mutex_;
};

class Loader {
 public:
  Loader(TransformedDataset data, LoaderOptions options);
  int64_t batch_count() const;
  const LoaderOptions& options() const { return options_; }
  const TransformedDataset& data() const { return data_; }
  std::unique_ptr<BatchStream> Epoch(int64_t epoch, int64_t start = 0) const {
    return std::make_unique<BatchStream>(data_, options_, epoch, start);
  }

 private:
  TransformedDataset data_;
  LoaderOptions options_;
};

}  // namespace torch_attn::data
