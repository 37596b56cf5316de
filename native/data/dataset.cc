#include "data/dataset.h"

#include "common/errors.h"

namespace torch_attn::data {

namespace {

void CheckIndex(int64_t index, int64_t size) {
  if (index < 0 || index >= size) {
    throw RangeError("index " + std::to_string(index) + " is out of range for a dataset of " + std::to_string(size) +
                     " samples");
  }
}

}  // namespace

MemoryDataset::MemoryDataset(std::vector<uint8_t> pixels, std::vector<int64_t> labels, int64_t channels, int64_t height,
                             int64_t width)
    : pixels_(std::move(pixels)), labels_(std::move(labels)), channels_(channels), height_(height), width_(width) {
  const int64_t record = channels * height * width;
  if (record <= 0 || static_cast<int64_t>(pixels_.size()) != record * size()) {
    throw RangeError("memory dataset: " + std::to_string(pixels_.size()) + " pixel bytes do not hold " +
                     std::to_string(size()) + " images of " + std::to_string(channels) + "x" + std::to_string(height) +
                     "x" + std::to_string(width));
  }
}

Sample MemoryDataset::Load(int64_t index) const {
  CheckIndex(index, size());
  Sample s;
  s.label = labels_[static_cast<size_t>(index)];
  s.image = Image(height_, width_, channels_);
  const int64_t plane = height_ * width_;
  const uint8_t* src = pixels_.data() + index * plane * channels_;
  uint8_t* dst = s.image.pixels.data();
  for (int64_t i = 0; i < plane; ++i) {
    for (int64_t k = 0; k < channels_; ++k) dst[i * channels_ + k] = src[k * plane + i];
  }
  return s;
}

std::string MemoryDataset::Describe() const {
  return std::to_string(size()) + " images " + std::to_string(channels_) + "x" + std::to_string(height_) + "x" +
         std::to_string(width_) + " in memory";
}

FileDataset::FileDataset(std::vector<std::string> paths, std::vector<int64_t> labels)
    : paths_(std::move(paths)), labels_(std::move(labels)) {
  if (paths_.size() != labels_.size()) throw RangeError("file dataset: paths and labels differ in length");
}

Sample FileDataset::Load(int64_t index) const {
  CheckIndex(index, size());
  const std::string& file = paths_[static_cast<size_t>(index)];
  Sample s;
  s.label = labels_[static_cast<size_t>(index)];
  s.image = DecodeImage(ReadFile(file), file);
  return s;
}

std::string FileDataset::Describe() const { return std::to_string(size()) + " image files"; }

Sample TransformedDataset::Get(int64_t index, uint64_t seed) const {
  Sample s = source->Load(index);
  transform->Apply(s, seed);
  return s;
}

}  // namespace torch_attn::data
