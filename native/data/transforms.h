// Per-sample transforms, native and seeded. Their semantics are torchvision's on uint8 tensor
// images (the same formulas and the same float32 arithmetic), so results match torchvision
// 0.14's tensor path exactly for the deterministic operations; see README "Transforms".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/rng.h"

namespace torch_attn::data {

// One transform as JS describes it: `op` plus named numbers (scalars are 1-element lists) and
// named strings, and (randomApply) the steps it wraps. Built into a Transform (and checked) by
// MakeTransform.
struct TransformSpec {
  std::string op;
  std::map<std::string, std::vector<double>> numbers;
  std::map<std::string, std::string> strings;
  std::vector<TransformSpec> steps;
};

// How deep randomApply may nest (a bound on recursion for specs from files and callers).
constexpr int kMaxTransformNesting = 8;

class Transform {
 public:
  virtual ~Transform() = default;
  virtual void Apply(Sample& sample, Rng& rng) const = 0;
  // What the transform takes and gives: 8-bit images until toTensor, float ones after it.
  virtual bool TakesFloat() const { return false; }
  virtual bool GivesFloat() const { return TakesFloat(); }
};

// An ordered list of transforms, checked at construction (names, values, order).
class Pipeline {
 public:
  // `takes_float`: whether the input is a float tensor image (else an 8-bit image, the usual).
  explicit Pipeline(const std::vector<TransformSpec>& specs, bool takes_float = false);
  // Applies every step with one generator seeded by `seed`.
  void Apply(Sample& sample, uint64_t seed) const;
  bool GivesFloat() const { return gives_float_; }
  size_t size() const { return steps_.size(); }

 private:
  std::vector<std::unique_ptr<Transform>> steps_;
  bool gives_float_ = false;
};

// Kernels the transforms are made of (also used directly by the deterministic ops).
enum class PadMode { kConstant, kEdge, kReflect, kSymmetric };
Image Pad(const Image& in, int64_t left, int64_t top, int64_t right, int64_t bottom, PadMode mode,
          const std::vector<double>& fill);
Image Crop(const Image& in, int64_t top, int64_t left, int64_t height, int64_t width);
Image Resize(const Image& in, int64_t height, int64_t width);
Image Rotate(const Image& in, double degrees, const std::vector<double>& fill);
void FlipHorizontal(Image& image);
void FlipVertical(Image& image);
void AdjustBrightness(Image& image, double factor);
void AdjustContrast(Image& image, double factor);
void AdjustSaturation(Image& image, double factor);
void AdjustHue(Image& image, double factor);
FloatImage ToTensor(const Image& image);
void Normalize(FloatImage& image, const std::vector<double>& mean, const std::vector<double>& std);

}  // namespace torch_attn::data
