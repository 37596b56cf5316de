// Datasets on the native side: indexable sources of (8-bit image, label). JS builds them from
// files it has listed or parsed (see lib/data); loader threads read them concurrently, so Load
// must be safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/transforms.h"

namespace torch_attn::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Sample Load(int64_t index) const = 0;
  virtual std::string Describe() const = 0;
};

// Images held in memory as N planar (CHW) uint8 records, as the CIFAR files store them.
class MemoryDataset : public Dataset {
 public:
  MemoryDataset(std::vector<uint8_t> pixels, std::vector<int64_t> labels, int64_t channels, int64_t height, int64_t width);
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Sample Load(int64_t index) const override;
  std::string Describe() const override;

 private:
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
  int64_t channels_, height_, width_;
};

// Image files decoded on demand (JPEG, PNG).
class FileDataset : public Dataset {
 public:
  FileDataset(std::vector<std::string> paths, std::vector<int64_t> labels);
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Sample Load(int64_t index) const override;
  std::string Describe() const override;
  const std::string& path(int64_t index) const { return paths_[static_cast<size_t>(index)]; }

 private:
  std::vector<std::string> paths_;
  std::vector<int64_t> labels_;
};

// A dataset with the transform its samples go through.
struct TransformedDataset {
  std::shared_ptr<const Dataset> source;
  std::shared_ptr<const Pipeline> transform;  // never null (may be empty)

  int64_t size() const { return source->size(); }
  Sample Get(int64_t index, uint64_t seed) const;
};

}  // namespace torch_attn::data
