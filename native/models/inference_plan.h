// Inference plans: a model in eval mode prepared for one input shape and precision. Every
// convolution is folded with the BatchNorm after it (weights scaled, bias added), its weights
// reordered once into oneDNN's layout for that shape (LibTorch's mkldnn_prepacked ops, what
// torch.jit.optimize_for_inference uses), and the ReLU after it fused; activations stay
// channels-last (NHWC) from end to end, which oneDNN's convolutions read and write without
// reorders. The architectures keep one forward pass: they call ConvBnAct(), which runs the
// prepared convolution while a plan is active on the thread and the modules' own forward passes
// otherwise.
//
// A plan is never stale: it records a signature of the model's weights (each parameter's and
// buffer's storage and version counter, and the model's generation, which every training-mode
// switch and weight load advances) and is rebuilt when it no longer matches.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "models/onednn_conv.h"
#include "models/precision.h"
#include "modules/attention.h"

namespace torch_attn::modules {
class ChannelAttentionImpl;
}

namespace torch_attn::models {

class ModelImpl;

// oneDNN cannot prepare a convolution in the plan's precision here: the plan is given up for
// that precision and the call runs eagerly.
struct PlanUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Folding gave a NaN or an infinity (a BatchNorm whose running variance plus eps is not positive,
// say): this call runs eagerly, as will the next ones until the weights change.
struct PlanSkipped : std::runtime_error {
  PlanSkipped() : std::runtime_error("non-finite folded weights") {}
};

// One prepared convolution (+ folded BatchNorm, + fused ReLU).
//
// A convolution whose weights outgrow a core's cache (kGemmMinWeightBytes) and that sees many
// output positions runs as one matrix product instead: its input gathered once into rows of
// kernel-height x kernel-width x channels values (im2col, one row per output position of every
// image), then a prepared 1 x 1 convolution over all N x OH x OW rows at once. oneDNN's direct
// kernel walks the images one by one and streams the whole weight tensor again for each (ResNet18's
// 512-channel 3 x 3 convolutions at 4 x 4: 9.4 MB per image); the product reads it once per block
// of rows. A 1 x 1 convolution with a stride can take the same road (its gather is a
// subsampling): oneDNN reorders such weights on every call otherwise. Which of the two forms is
// faster depends on the machine and the precision (bf16's kernels stream half the bytes), so for
// a convolution that could take either the plan times both on the call's own input when it is
// made (the best of kTuneRuns each, PyTorch's cudnn.benchmark idea) and keeps the faster, the
// product only by a margin (kGemmMaxTimeShare); PlanCache::tuning off, it always takes the product.
struct PreparedConv {
  c10::IValue context;  // mkldnn ConvOpContext, or:
  std::shared_ptr<const DirectConv> direct;  // the direct form on oneDNN's API (onednn_conv.h)
  bool relu = false;
  bool residual = false;  // direct, with the residual add before the ReLU (ConvBnAddRelu)
  bool folded_bn = false;
  int64_t weight_bytes = 0;
  bool gemm = false;  // im2col + 1 x 1 convolution, below
  int64_t winograd_bytes = 0;  // direct by Winograd: the reordered weights it added (0 when lent)
  std::array<int64_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0};
};

// The weight size from which a plan runs a k x k convolution as a matrix product (see above), and
// the fewest output positions (N x OH x OW) for which it does.
constexpr int64_t kGemmMinWeightBytes = 4 << 20;
constexpr int64_t kGemmMinRows = 64;
// Timed runs per form when a plan chooses between them (after one untimed run).
constexpr int kTuneRuns = 3;
// How much faster the product form must time to be taken: at most this share of the direct
// form's time. It holds a copy of the weights of its own (9.4 MB for a 512-channel 3 x 3
// convolution), so a tie goes to the direct form. Taken on any gain, near-ties decided the
// memory by chance: layer4's three convolutions at batch 4 (64 rows) timed 0.93-1.26x the direct
// form's time across five processes (best of three each, this project's newer machine), and the
// plans for batch 2, 4 and 16 grew RSS by 110.5 to 137.6 MB with none to three of them taken,
// against the bound of one copy of the weights a plan (127.7 MB; the test of three more shapes).
constexpr double kGemmMaxTimeShare = 0.9;

struct PlanKey {
  std::vector<int64_t> shape;
  Precision precision = Precision::kFp32;
  bool operator==(const PlanKey& o) const { return shape == o.shape && precision == o.precision; }
};

// CBAM's channel MLP as cbam_kernels::ChannelMlp takes it: its Linear layers' weights and biases
// (undefined without) as contiguous float32, in a bf16 plan rounded to bfloat16 as autocast casts
// them on every eager call.
struct MlpWeights {
  torch::Tensor w1, b1, w2, b2;
};

// Folded weights (channels-last, in the plan's dtype) and biases, and their prepacked contexts,
// shared by every plan of a model for the same weights: a plan's own memory is a table of them.
struct FoldedWeights {
  uint64_t signature = 0;
  // Every parameter, buffer and folded weight finite: plans run only then (see PlanCache::For).
  bool finite = true;
  std::unordered_map<const torch::nn::Conv2dImpl*, std::pair<torch::Tensor, torch::Tensor>> fp32, bf16;
  // Prepacked contexts by (convolution, run as a matrix product, ReLU fused).
  std::map<std::tuple<const torch::nn::Conv2dImpl*, bool, bool>, c10::IValue> fp32_contexts, bf16_contexts;
  // Direct forms on oneDNN's API by (convolution, ReLU fused), one per input shape, owned by the
  // plans (an evicted plan frees its primitives); those whose weights' layout agrees share one
  // reordered copy.
  std::map<std::pair<const torch::nn::Conv2dImpl*, bool>, std::vector<std::weak_ptr<const DirectConv>>> fp32_direct, bf16_direct;
  // The measured choice of form by (convolution, floor(log2(rows))), rows = N x OH x OW: true
  // for the product.
  std::map<std::pair<const torch::nn::Conv2dImpl*, int>, bool> fp32_gemm_choice, bf16_gemm_choice;
  std::unordered_map<const modules::ChannelAttentionImpl*, MlpWeights> fp32_mlp, bf16_mlp;
};

class InferencePlan {
 public:
  // winograd_budget: the bytes of Winograd weights (onednn_conv.h) the plan may add, in all.
  InferencePlan(PlanKey key, std::shared_ptr<FoldedWeights> folded, bool tuning, int64_t winograd_budget)
      : key_(std::move(key)), folded_(std::move(folded)), tuning_(tuning), winograd_budget_(winograd_budget) {}
  const PlanKey& key() const { return key_; }
  uint64_t signature = 0;
  int64_t uses = 0;

  // The prepared form of (conv, bn, relu) for input x, made on first use. `residual` (relu false):
  // a residual block's last convolution, whose output is added to the identity and then goes
  // through a ReLU; where it can, the form does both (PreparedConv::residual), else neither.
  const PreparedConv& Get(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl* bn, bool relu, const torch::Tensor& x,
                          bool residual = false);
  // CBAM's channel MLP in the plan's precision, made on first use and shared like the folded
  // weights.
  const MlpWeights& Mlp(const modules::ChannelAttentionImpl& attention);
  int64_t convolutions() const { return static_cast<int64_t>(convs_.size()); }
  int64_t folded() const;
  int64_t fused_relu() const;
  int64_t fused_residual_adds() const;
  int64_t gemms() const;
  int64_t winograds() const;
  int64_t winograds_f4() const;  // of them, by F(4x4, 3x3)
  int64_t weight_bytes() const;

  // The plan in effect on this thread (set by Scope), or nullptr.
  static InferencePlan* Active();
  class Scope {
   public:
    explicit Scope(InferencePlan* plan);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    InferencePlan* previous_;
  };

 private:
  PlanKey key_;
  std::shared_ptr<FoldedWeights> folded_;
  bool tuning_;  // measure the two forms of a candidate convolution (PlanCache::tuning)
  int64_t winograd_budget_;
  int64_t winograd_bytes_ = 0;  // taken of it
  std::unordered_map<const torch::nn::Conv2dImpl*, PreparedConv> convs_;
};

// What a plan is, for model.inferencePlan().
struct PlanDescription {
  std::vector<int64_t> shape;
  Precision precision;
  int64_t convolutions, folded_batch_norms, fused_relus, fused_residual_adds, gemm_convolutions, winograd_convolutions, winograd_f4_convolutions, weight_bytes,
      uses;
};

// The plans of one model, most recently used first, at most kMaxPlans, or more where Reserve
// asked for more.
class PlanCache {
 public:
  static constexpr size_t kMaxPlans = 8;
  // The most plans Reserve keeps.
  static constexpr size_t kMostPlans = 72;
  // Keeps plans for `shapes` more shapes than kMaxPlans from now on (at most kMostPlans in all;
  // never fewer than asked before): a serving batcher's batch sizes, 1 to its maximum. Kept per
  // shape, a batcher's sizes beyond the 8 were made again and again: ResNet18-CBAM at 32 x 32,
  // bursts of 1 to 40 requests taking turns on two models in one process, 467.4 images/s keeping
  // 8 against 500.9 keeping 40; ten batch sizes in turns, a batch of 1 11.2 ms against 4.2, and
  // RSS after three rounds of every size from 1 to 32, 1177 MB against 1038 (made again, the
  // plans' memory came back fragmented). Only a number: set from any thread, read by the compute
  // thread when it trims.
  void Reserve(size_t shapes) {
    const size_t want = std::min(kMaxPlans + shapes, kMostPlans);
    size_t now = capacity_.load();
    while (now < want && !capacity_.compare_exchange_weak(now, want)) {
    }
  }
  size_t capacity() const { return capacity_.load(); }
  // The valid plan for (x's shape, precision), made or rebuilt when needed; nullptr when this
  // input cannot be planned (not CPU, fp16, no oneDNN in this LibTorch, plans turned off, a NaN or
  // an infinity in x or the weights).
  InferencePlan* For(ModelImpl& model, const torch::Tensor& x, Precision precision);
  void Clear() {
    plans_.clear();
    folded_.reset();
  }
  std::vector<PlanDescription> Describe() const;
  bool enabled = true;
  // Candidates for the matrix-product form: measured against the direct form (true, the
  // default), or always the product (false: the same plans on every machine and in every run).
  bool tuning = true;
  // Advanced by every change of weights the version counters may miss (training mode, loads).
  void Invalidate() { ++generation_; }
  // After PlanUnavailable: no more plans in `precision` for this model.
  void Refuse(Precision precision);

 private:
  std::list<std::unique_ptr<InferencePlan>> plans_;
  std::atomic<size_t> capacity_{kMaxPlans};
  std::shared_ptr<FoldedWeights> folded_;
  uint64_t generation_ = 0;
  std::vector<Precision> refused_;
};

// Whether this LibTorch has the prepacked oneDNN convolution (built with MKLDNN).
bool PlansAvailable();

// conv -> BatchNorm (optional) -> ReLU (optional): eager through the modules, or prepared under
// the active plan.
torch::Tensor ConvBnAct(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl* bn, bool relu, const torch::Tensor& x);

// An attention module's forward pass; under the active plan, CBAM (average and max pools, no
// passthrough gate) runs one MLP pass over both descriptors, its spatial convolution prepared
// like the others, and the spatial weighting in place.
torch::Tensor AttentionForward(modules::AttentionModule& module, const torch::Tensor& x);

// While one is alive on a thread, every AttentionForward on that thread also records the
// module's maps for its input (model.attentionMaps(): a whole model's maps, by module).
class AttentionRecorder {
 public:
  AttentionRecorder();
  ~AttentionRecorder();
  AttentionRecorder(const AttentionRecorder&) = delete;
  AttentionRecorder& operator=(const AttentionRecorder&) = delete;
  static AttentionRecorder* Active();
  void Add(const modules::AttentionModule* module, modules::NamedMaps maps) { maps_.emplace_back(module, std::move(maps)); }
  const std::vector<std::pair<const modules::AttentionModule*, modules::NamedMaps>>& maps() const { return maps_; }

 private:
  AttentionRecorder* previous_;
  std::vector<std::pair<const modules::AttentionModule*, modules::NamedMaps>> maps_;
};

// out + identity, then ReLU (a residual block's end): one fused pass under the active plan.
torch::Tensor AddRelu(torch::Tensor out, const torch::Tensor& identity);

// relu(conv -> BatchNorm (x) + identity), a residual block's end: under the active plan, where
// the convolution runs on oneDNN's API and is not a matrix-product candidate, one convolution
// that adds its result to the identity in the identity's own buffer (which the block owns: it is
// the block's input or its shortcut's output, read by nothing after); else ConvBnAct + AddRelu.
torch::Tensor ConvBnAddRelu(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl* bn, const torch::Tensor& x, const torch::Tensor& identity);

}  // namespace torch_attn::models
