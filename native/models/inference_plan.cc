#include "models/inference_plan.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "common/errors.h"
#include "common/torch_compat.h"
#include "models/cbam_kernels.h"
#include "models/model.h"
#include "modules/batch_norm.h"
#include "modules/cbam.h"
#include "runtime/fast_paths.h"
#include "runtime/onednn.h"

namespace torch_attn::models {

namespace {

namespace variants = compat::variants;

thread_local InferencePlan* active_plan = nullptr;

const c10::OperatorHandle* FindOp(const char* name) {
  auto op = c10::Dispatcher::singleton().findSchema({name, ""});
  return op ? new c10::OperatorHandle(*op) : nullptr;  // kept for the process
}

const c10::OperatorHandle* PrepackOp() {
  static const c10::OperatorHandle* op = FindOp("mkldnn_prepacked::conv2d_prepack");
  return op;
}

const c10::OperatorHandle* RunOp() {
  static const c10::OperatorHandle* op = FindOp("mkldnn_prepacked::conv2d_run");
  return op;
}

// A convolution's output height and width for input x (dilation 1, as the product form requires).
std::array<int64_t, 2> OutputSize(const PreparedConv& p, const torch::Tensor& x) {
  return {(x.size(2) + 2 * p.padding[0] - p.kernel[0]) / p.stride[0] + 1, (x.size(3) + 2 * p.padding[1] - p.kernel[1]) / p.stride[1] + 1};
}

c10::ScalarType PlanDtype(Precision p) { return p == Precision::kBf16 ? at::kBFloat16 : at::kFloat; }

// FNV-1a over what identifies the weights' current values.
class Signature {
 public:
  void Mix(uint64_t v) {
    hash_ ^= v;
    hash_ *= 1099511628211ULL;
  }
  void Mix(const torch::Tensor& t) {
    Mix(reinterpret_cast<uintptr_t>(t.unsafeGetTensorImpl()));
    Mix(reinterpret_cast<uintptr_t>(t.data_ptr()));
    Mix(static_cast<uint64_t>(t._version()));
  }
  uint64_t value() const { return hash_; }

 private:
  uint64_t hash_ = 1469598103934665603ULL;
};

uint64_t WeightsSignature(const ModelImpl& model, uint64_t generation) {
  Signature s;
  s.Mix(generation);
  s.Mix(model.channels_last() ? 1 : 0);
  ForEachParameterAndBuffer(model, [&](const torch::Tensor& t) { s.Mix(t); });
  return s.value();
}

}  // namespace

// Plans need the prepacked ops, and a oneDNN they were checked on. Not oneDNN 3.x: Debian 13's
// LibTorch 2.6 (oneDNN 3.6/3.7; seen while the addon capped it to AVX2, runtime/onednn.h) dies with SIGFPE (an
// integer division by zero inside dnnl_convolution_forward_primitive_desc_create) on the first
// prepared residual-block convolution; there, eval runs the modules eagerly as before.
bool PlansAvailable() {
  static const bool available = [] {
    const std::string& version = runtime::GetOneDnn().version;
    const bool onednn_ok = !version.empty() && version[0] >= '0' && version[0] <= '2' && version[1] == '.';
    return onednn_ok && at::hasMKLDNN() && PrepackOp() != nullptr && RunOp() != nullptr;
  }();
  return available;
}

InferencePlan* InferencePlan::Active() { return active_plan; }

InferencePlan::Scope::Scope(InferencePlan* plan) : previous_(active_plan) { active_plan = plan; }
InferencePlan::Scope::~Scope() { active_plan = previous_; }

namespace {

// The prepacked context of `folded` (weights, bias) in the form p says (direct or product), for
// input x. PlanUnavailable when oneDNN has no convolution for this precision on this CPU.
c10::IValue Prepack(const torch::nn::Conv2dImpl& conv, const std::pair<torch::Tensor, torch::Tensor>& folded, const PreparedConv& p,
                    const torch::Tensor& x) {
  const auto& o = conv.options;
  const auto [oh, ow] = OutputSize(p, x);
  // The product's weights: [out, kh x kw x in, 1, 1], the order of the gathered rows (channels
  // fastest), which is the folded weights' own channels-last memory.
  const auto weight = p.gemm ? folded.first.permute({0, 2, 3, 1}).reshape({folded.first.size(0), -1, 1, 1}) : folded.first;
  const std::vector<int64_t> ones{1, 1}, zeros{0, 0};
  torch::jit::Stack stack;
  stack.emplace_back(weight);
  stack.emplace_back(folded.second);
  stack.emplace_back(p.gemm ? ones : std::vector<int64_t>(p.stride.begin(), p.stride.end()));
  stack.emplace_back(p.gemm ? zeros : std::vector<int64_t>(p.padding.begin(), p.padding.end()));
  stack.emplace_back(p.gemm ? ones : std::vector<int64_t>(o.dilation()->begin(), o.dilation()->end()));
  stack.emplace_back(o.groups());
  stack.emplace_back(p.gemm ? std::vector<int64_t>{1, weight.size(1), x.size(0) * oh * ow, 1} : x.sizes().vec());
  stack.emplace_back(std::string(p.relu ? "relu" : "none"));
  try {
    PrepackOp()->callBoxed(&stack);
  } catch (const c10::Error& e) {
    throw PlanUnavailable(ShortTorchMessage(e.what()));
  }
  return std::move(stack.at(0));
}

// Runs a prepared convolution on x (channels-last, in the plan's dtype).
torch::Tensor RunPrepared(const PreparedConv& p, const torch::Tensor& x) {
  if (p.direct) return RunDirectConv(*p.direct, x);
  if (!p.gemm) {
    torch::jit::Stack stack{x, p.context};
    RunOp()->callBoxed(&stack);
    return stack.at(0).toTensor();
  }
  const auto [kh, kw] = p.kernel;
  const auto [sh, sw] = p.stride;
  const auto [ph, pw] = p.padding;
  const int64_t n = x.size(0), c = x.size(1);
  const auto [oh, ow] = OutputSize(p, x);
  auto nhwc = x.permute({0, 2, 3, 1});
  if (ph != 0 || pw != 0) nhwc = at::constant_pad_nd(nhwc, {0, 0, pw, pw, ph, ph});
  auto rows = at::empty({n, oh, ow, kh * kw * c}, x.options());
  for (int64_t i = 0; i < kh; ++i) {
    for (int64_t j = 0; j < kw; ++j) {
      rows.narrow(3, (i * kw + j) * c, c).copy_(nhwc.slice(1, i, i + sh * (oh - 1) + 1, sh).slice(2, j, j + sw * (ow - 1) + 1, sw));
    }
  }
  torch::jit::Stack stack{rows.view({1, n * oh * ow, 1, kh * kw * c}).permute({0, 3, 1, 2}), p.context};
  RunOp()->callBoxed(&stack);
  const auto out = stack.at(0).toTensor();  // 1 x OC x (N OH OW) x 1, channels-last: rows of OC
  return out.permute({0, 2, 3, 1}).reshape({n, oh, ow, out.size(1)}).permute({0, 3, 1, 2});
}

// The best of kTuneRuns timed runs of p on x, in seconds, after one untimed run (which makes
// oneDNN's primitive for the shape).
double TimeRuns(const PreparedConv& p, const torch::Tensor& x) {
  RunPrepared(p, x);
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < kTuneRuns; ++i) {
    const auto start = std::chrono::steady_clock::now();
    RunPrepared(p, x);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// Whether every value of t is finite (a float32 tensor's bits read in one pass, without a
// temporary).
bool AllFinite(const torch::Tensor& t) {
  if (!at::isFloatingType(t.scalar_type())) return true;
  if (t.scalar_type() != at::kFloat || !t.device().is_cpu() || !t.is_non_overlapping_and_dense()) {
    return at::isfinite(t).all().item<bool>();
  }
  const auto* bits = static_cast<const uint32_t*>(t.data_ptr());
  uint32_t bad = 0;
  for (int64_t i = 0, n = t.numel(); i < n; ++i) bad |= static_cast<uint32_t>((~bits[i] & 0x7F800000u) == 0);  // exponent all ones
  return bad == 0;
}

}  // namespace

const PreparedConv& InferencePlan::Get(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl* bn, bool relu, const torch::Tensor& x,
                                       bool residual) {
  auto found = convs_.find(&conv);
  if (found != convs_.end()) return found->second;
  torch::NoGradGuard no_grad;
  const auto& o = conv.options;
  const bool bf16 = key_.precision == Precision::kBf16;
  auto& folded = (bf16 ? folded_->bf16 : folded_->fp32)[&conv];
  if (!folded.first.defined()) {
    // Folding in float64, so that the folded weights round once.
    auto w = conv.weight.detach().to(at::kDouble);
    auto b = conv.bias.defined() ? conv.bias.detach().to(at::kDouble) : torch::zeros({w.size(0)}, w.options());
    if (bn != nullptr) {
      auto scale = torch::rsqrt(bn->running_var.to(at::kDouble) + bn->options.eps());
      if (bn->options.affine()) scale = scale * bn->weight.detach().to(at::kDouble);
      w = w * scale.view({-1, 1, 1, 1});
      b = (b - bn->running_mean.to(at::kDouble)) * scale;
      if (bn->options.affine()) b = b + bn->bias.detach().to(at::kDouble);
    }
    folded = {w.to(PlanDtype(key_.precision)).contiguous(at::MemoryFormat::ChannelsLast), b.to(at::kFloat)};
    if (!AllFinite(folded.first) || !AllFinite(folded.second)) {
      folded_->finite = false;
      throw PlanSkipped();
    }
  }
  const auto& padding = *variants::get<torch::ExpandingArray<2>>(o.padding());
  PreparedConv prepared;
  prepared.kernel = {(*o.kernel_size())[0], (*o.kernel_size())[1]};
  prepared.stride = {(*o.stride())[0], (*o.stride())[1]};
  prepared.padding = {padding[0], padding[1]};
  prepared.relu = relu;
  prepared.folded_bn = bn != nullptr;
  prepared.weight_bytes = static_cast<int64_t>(folded.first.nbytes());
  const bool unit_dilation = (*o.dilation())[0] == 1 && (*o.dilation())[1] == 1;
  const auto [oh, ow] = OutputSize(prepared, x);
  const int64_t rows = x.size(0) * oh * ow;
  const int64_t taps = prepared.kernel[0] * prepared.kernel[1];
  const bool candidate = o.groups() == 1 && unit_dilation &&
                         (taps > 1 ? prepared.weight_bytes >= kGemmMinWeightBytes && rows >= kGemmMinRows
                                   : (prepared.stride[0] > 1 || prepared.stride[1] > 1) && padding[0] == 0 && padding[1] == 0);
  // A prepacked context runs any batch and image size (oneDNN makes, and caches, a primitive per
  // shape); the shape it is made for only picks the weights' layout. So the plans of one model's
  // weights share them: a plan for a new batch size (a serving batcher forms every size up to its
  // maximum) costs no second copy of the weights and no repacking.
  //
  // The direct form runs on oneDNN's own API where this build has it (onednn_conv.h): a primitive
  // per shape, the weights reordered once per layout it asks for.
  auto& contexts = bf16 ? folded_->bf16_contexts : folded_->fp32_contexts;
  auto& directs = (bf16 ? folded_->bf16_direct : folded_->fp32_direct)[{&conv, relu}];
  directs.erase(std::remove_if(directs.begin(), directs.end(), [](const auto& d) { return d.expired(); }), directs.end());
  std::vector<std::shared_ptr<const DirectConv>> siblings;
  for (const auto& d : directs) siblings.push_back(d.lock());
  const bool plain = o.groups() == 1 && unit_dilation;  // what the direct form makes
  auto form = [&](bool gemm) {
    PreparedConv out = prepared;
    out.gemm = gemm;
    if (!gemm && plain &&
        (out.direct = MakeDirectConv(folded.first, folded.second, prepared.stride, prepared.padding, relu, false, x, siblings,
                                     winograd_budget_ - winograd_bytes_, &out.winograd_bytes))) {
      return out;
    }
    auto shared = contexts.find({&conv, gemm, relu});
    out.context = shared != contexts.end() ? shared->second : Prepack(conv, folded, out, x);
    return out;
  };
  PreparedConv fused = prepared;
  if (residual && !candidate && !relu && plain &&
      (fused.direct = MakeDirectConv(folded.first, folded.second, prepared.stride, prepared.padding, /*relu=*/true, /*residual=*/true, x, siblings,
                                     winograd_budget_ - winograd_bytes_, &fused.winograd_bytes))) {
    fused.relu = fused.residual = true;
    prepared = std::move(fused);
  } else if (!candidate || !tuning_) {
    prepared = form(candidate);
  } else {
    // Which form is faster depends on the machine (its caches and memory bandwidth against its
    // arithmetic) and on the precision, so it is measured, once per convolution and power-of-two
    // range of rows (a batcher's sizes 5 to 7 share batch 4's measurement), and remembered with
    // the weights.
    auto& choices = bf16 ? folded_->bf16_gemm_choice : folded_->fp32_gemm_choice;
    const int rows_range = 63 - __builtin_clzll(static_cast<unsigned long long>(rows));
    auto choice = choices.find({&conv, rows_range});
    if (choice != choices.end()) {
      prepared = form(choice->second);
    } else if (PreparedConv direct = form(false); direct.direct && DirectConvIsWinograd(*direct.direct)) {
      // Winograd (2.25-4x fewer multiplications than either form) is taken without timing: on a
      // busy machine (a test run's other process on the second core) the timings of the two forms
      // flipped from plan to plan, and each plan held the product form's weights too until then.
      // Not remembered: the next plan's budget decides its own form.
      prepared = std::move(direct);
    } else {
      PreparedConv product = form(true);
      const double direct_s = TimeRuns(direct, x), product_s = TimeRuns(product, x);
      prepared = product_s < kGemmMaxTimeShare * direct_s ? std::move(product) : std::move(direct);
      choices.emplace(std::make_pair(&conv, rows_range), prepared.gemm);
    }
  }
  winograd_bytes_ += prepared.winograd_bytes;
  if (prepared.direct) {
    directs.push_back(prepared.direct);
  } else {
    contexts.emplace(std::make_tuple(&conv, prepared.gemm, relu), prepared.context);
  }
  return convs_.emplace(&conv, std::move(prepared)).first->second;
}

const MlpWeights& InferencePlan::Mlp(const modules::ChannelAttentionImpl& attention) {
  const bool bf16 = key_.precision == Precision::kBf16;
  auto& cache = bf16 ? folded_->bf16_mlp : folded_->fp32_mlp;
  auto found = cache.find(&attention);
  if (found != cache.end()) return found->second;
  torch::NoGradGuard no_grad;
  const auto held = [bf16](const torch::Tensor& t) {
    if (!t.defined()) return t;
    return (bf16 ? t.detach().to(at::kBFloat16).to(at::kFloat) : t.detach().to(at::kFloat)).contiguous();
  };
  const auto& squeeze = *attention.fc->ptr(0)->as<torch::nn::LinearImpl>();
  const auto& excite = *attention.fc->ptr(2)->as<torch::nn::LinearImpl>();
  return cache.emplace(&attention, MlpWeights{held(squeeze.weight), held(squeeze.bias), held(excite.weight), held(excite.bias)}).first->second;
}

int64_t InferencePlan::folded() const {
  return std::count_if(convs_.begin(), convs_.end(), [](const auto& c) { return c.second.folded_bn; });
}

int64_t InferencePlan::fused_relu() const {
  return std::count_if(convs_.begin(), convs_.end(), [](const auto& c) { return c.second.relu; });
}

int64_t InferencePlan::fused_residual_adds() const {
  return std::count_if(convs_.begin(), convs_.end(), [](const auto& c) { return c.second.residual; });
}

int64_t InferencePlan::gemms() const {
  return std::count_if(convs_.begin(), convs_.end(), [](const auto& c) { return c.second.gemm; });
}

int64_t InferencePlan::winograds() const {
  return std::count_if(convs_.begin(), convs_.end(), [](const auto& c) { return c.second.direct && DirectConvIsWinograd(*c.second.direct); });
}

int64_t InferencePlan::winograds_f4() const {
  return std::count_if(convs_.begin(), convs_.end(), [](const auto& c) { return c.second.direct && DirectConvIsWinogradF4(*c.second.direct); });
}

int64_t InferencePlan::weight_bytes() const {
  // What each convolution reads: the direct form's reordered weights (Winograd's transformed ones
  // among them), else the prepacked context's copy of the folded weights (their size).
  int64_t total = 0;
  for (const auto& c : convs_) total += c.second.direct ? DirectConvWeightBytes(*c.second.direct) : c.second.weight_bytes;
  return total;
}

InferencePlan* PlanCache::For(ModelImpl& model, const torch::Tensor& x, Precision precision) {
  if (!enabled || model.is_training() || torch::GradMode::is_enabled() || x.dim() != 4 || !x.device().is_cpu() ||
      precision == Precision::kFp16 || !PlansAvailable() ||
      std::find(refused_.begin(), refused_.end(), precision) != refused_.end()) {
    return nullptr;
  }
  const uint64_t signature = WeightsSignature(model, generation_);
  if (!folded_ || folded_->signature != signature) {
    folded_ = std::make_shared<FoldedWeights>();
    folded_->signature = signature;
    ForEachParameterAndBuffer(model, [&](const torch::Tensor& t) { folded_->finite = folded_->finite && AllFinite(t); });
  }
  // A NaN or an infinity runs eagerly: oneDNN's fused ReLU is a maximum with 0, which turns NaN
  // into 0, so a plan would give finite logits where the modules, like PyTorch, give NaN (an
  // image with one NaN pixel; a diverged model's weights).
  if (!folded_->finite || !AllFinite(x)) return nullptr;
  PlanKey key{x.sizes().vec(), precision};
  auto it = std::find_if(plans_.begin(), plans_.end(), [&](const auto& p) { return p->key() == key; });
  if (it != plans_.end() && (*it)->signature != signature) {
    plans_.erase(it);  // stale: the weights changed since it was made
    it = plans_.end();
  }
  if (it == plans_.end()) {
    // Winograd's weights (onednn_conv.h) may add up to 3 copies of the model's own convolution
    // weights per plan (fp32 ResNet18 from batch 16: every 3 x 3 convolution of stride 1 in the
    // blocks by F(4x4), 113.2 MB of 133.8; layer4's 84.9 of it, weights-stationary, winograd.h),
    // the bound a plan's memory keeps; plans for other shapes lend theirs. Half, as it was, left a
    // plan made alone one of layer4's three F(2x2) (batch 64: 336 against 365 img/s,
    // docs/measurements.md); 1.25 copies (until layer4 took F(4x4)) held layer1-3 by F(4x4) and
    // layer4 by F(2x2) (50.1 MB); the plans take their forms convolution by convolution, in the
    // network's order, so a smaller budget leaves the last ones F(2x2) or direct.
    int64_t conv_weight_bytes = 0;
    for (const auto& p : model.parameters()) {
      if (p.dim() == 4) conv_weight_bytes += p.numel() * static_cast<int64_t>(sizeof(float));
    }
    plans_.push_front(std::make_unique<InferencePlan>(std::move(key), folded_, tuning, conv_weight_bytes * 3));
    plans_.front()->signature = signature;
    while (plans_.size() > capacity()) plans_.pop_back();
  } else if (it != plans_.begin()) {
    plans_.splice(plans_.begin(), plans_, it);
  }
  return plans_.front().get();
}

void PlanCache::Refuse(Precision precision) {
  refused_.push_back(precision);
  plans_.remove_if([&](const auto& p) { return p->key().precision == precision; });
}

std::vector<PlanDescription> PlanCache::Describe() const {
  std::vector<PlanDescription> out;
  for (const auto& p : plans_) {
    out.push_back({p->key().shape, p->key().precision, p->convolutions(), p->folded(), p->fused_relu(), p->fused_residual_adds(), p->gemms(), p->winograds(), p->winograds_f4(),
                   p->weight_bytes(), p->uses});
  }
  return out;
}

namespace {

// The active plan when it can prepare conv, else nullptr; then *input is x in the plan's dtype,
// channels-last.
InferencePlan* PlanFor(const torch::nn::Conv2dImpl& conv, const torch::Tensor& x, torch::Tensor* input) {
  InferencePlan* plan = InferencePlan::Active();
  const auto& o = conv.options;
  if (plan == nullptr || o.transposed() || !variants::holds_alternative<torch::ExpandingArray<2>>(o.padding()) ||
      !variants::holds_alternative<torch::enumtype::kZeros>(o.padding_mode())) {
    return nullptr;
  }
  const auto dtype = PlanDtype(plan->key().precision);
  *input = x.scalar_type() == dtype ? x : x.to(dtype);
  if (!input->is_contiguous(at::MemoryFormat::ChannelsLast)) *input = input->contiguous(at::MemoryFormat::ChannelsLast);
  return plan;
}

}  // namespace

torch::Tensor ConvBnAddRelu(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl* bn, const torch::Tensor& x, const torch::Tensor& identity) {
  torch::Tensor input;
  if (InferencePlan* plan = PlanFor(conv, x, &input)) {
    const PreparedConv& p = plan->Get(conv, bn, /*relu=*/false, input, /*residual=*/true);
    if (p.residual && identity.scalar_type() == input.scalar_type() && identity.is_contiguous(at::MemoryFormat::ChannelsLast)) {
      return RunDirectConv(*p.direct, input, identity);
    }
    return AddRelu(RunPrepared(p, input), identity);
  }
  return AddRelu(ConvBnAct(conv, bn, /*relu=*/false, x), identity);
}

torch::Tensor ConvBnAct(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl* bn, bool relu, const torch::Tensor& x) {
  torch::Tensor input;
  if (InferencePlan* plan = PlanFor(conv, x, &input)) {
    const PreparedConv& p = plan->Get(conv, bn, relu, input);
    if (p.residual) throw std::logic_error("ConvBnAct: a convolution prepared with its residual add");
    return RunPrepared(p, input);
  }
  auto y = Conv2dForward(conv, x);
  if (bn != nullptr) y = modules::BatchNorm(*bn, y);
  return relu ? y.relu_() : y;
}

namespace {
thread_local AttentionRecorder* active_recorder = nullptr;
}  // namespace

AttentionRecorder::AttentionRecorder() : previous_(active_recorder) { active_recorder = this; }
AttentionRecorder::~AttentionRecorder() { active_recorder = previous_; }
AttentionRecorder* AttentionRecorder::Active() { return active_recorder; }

namespace {

// The rows (pixels) of c channels in one unit of CBAM's per-pixel passes below: about 16K values
// (64 KB of float32), so that they split between threads at batch 1 too (layer1's 1024 rows of 64
// channels: 4 units; a pass image by image left one thread waiting). Each row's result is its own,
// so the split does not change it.
constexpr int64_t kCbamUnitValues = 16384;

// f(image, first row, rows) for each unit of the n x hw rows (a unit does not cross an image), the
// units in parallel.
template <typename F>
void ForRowUnits(int64_t n, int64_t hw, int64_t c, const F& f) {
  const int64_t unit = std::max<int64_t>(1, kCbamUnitValues / c), per_image = (hw + unit - 1) / unit;
  at::parallel_for(0, n * per_image, 1, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t b = u / per_image, first = (u % per_image) * unit;
      f(b, first, std::min(unit, hw - first));
    }
  });
}

// CBAM under a plan, on channels-last x in float32 or bfloat16 (T), in parallel (cbam_kernels.h):
// one pass gathers both channel descriptors, image by image, the shared MLP gives the channel
// weights (cbam_kernels::ChannelMlp: at batch 1, 0.12 ms of a 4.1 ms fp32 ResNet18-CBAM pass in
// LibTorch's Linear ops, 0.2 ms of a 2.2 ms bf16 one, where autocast casts the weights on every
// call), a second pass weights the channels and gathers the spatial descriptors per pixel (mean and
// maximum over the channels, written channels-last for the prepared k x k convolution), a third
// applies the spatial map in place. At batch 1 this replaced some fifteen LibTorch ops per module
// (fp32: 0.4 ms of a 9 ms ResNet18-CBAM pass; bf16: 1.2 ms of a 5.6 ms one, perf and A/B). In
// bf16 the MLP and the spatial convolution compute as autocast has them (their inputs rounded to
// bf16 where the eager module's are), and each stored value is rounded as LibTorch's bf16 ops
// round it, so the output differs from the eager ops' only by the order of the sums.
template <typename T>
torch::Tensor PlannedCbam(modules::CbamImpl& cbam, const torch::Tensor& x) {
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  const T* in = x.data_ptr<T>();
  // average rows, then maximum rows
  auto pooled = torch::empty({2 * n, c}, x.options().dtype(at::kFloat).memory_format(at::MemoryFormat::Contiguous));
  float* pool = pooled.data_ptr<float>();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      float* avg = pool + b * c;
      cbam_kernels::PoolChannels(in + b * hw * c, hw, c, avg, pool + (n + b) * c);
      for (int64_t j = 0; j < c; ++j) avg[j] /= static_cast<float>(hw);
    }
  });
  InferencePlan& plan = *InferencePlan::Active();
  const auto& mlp = plan.Mlp(*cbam.channel_attn);
  const auto data = [](const torch::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; };
  auto weights = torch::empty({n, c}, pooled.options());
  float* w = weights.data_ptr<float>();
  cbam_kernels::ChannelMlp(pool, n, c, mlp.w1.size(0), data(mlp.w1), data(mlp.b1), data(mlp.w2), data(mlp.b2),
                           plan.key().precision == Precision::kBf16, w);
  auto y = torch::empty_like(x, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  T* out = y.data_ptr<T>();
  torch::Tensor descriptors;
  T* desc = nullptr;
  if (cbam.spatial_attn) {
    descriptors = torch::empty({n, 2, x.size(2), x.size(3)}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
    desc = descriptors.data_ptr<T>();
  }
  const int mean_at = cbam.spatial_attn && cbam.spatial_attn->max_first ? 1 : 0;
  ForRowUnits(n, hw, c, [&](int64_t b, int64_t first, int64_t rows) {
    const int64_t at = b * hw + first;
    cbam_kernels::WeightChannels(in + at * c, w + b * c, rows, c, out + at * c, desc == nullptr ? nullptr : desc + at * 2, mean_at);
  });
  if (!cbam.spatial_attn) return y;
  auto& spatial = *cbam.spatial_attn;
  // N x 1 x H x W: channels-last is the same memory as contiguous.
  const auto gate =
      ConvBnAct(*spatial.conv, spatial.bn ? spatial.bn.get() : nullptr, /*relu=*/false, descriptors).sigmoid_().to(at::kFloat).contiguous();
  const float* g = gate.data_ptr<float>();
  ForRowUnits(n, hw, c, [&](int64_t b, int64_t first, int64_t rows) {
    const int64_t at = b * hw + first;
    cbam_kernels::ScaleRows(out + at * c, g + at, rows, c);
  });
  return y;
}

}  // namespace

torch::Tensor AttentionForward(modules::AttentionModule& module, const torch::Tensor& x) {
  if (auto* recorder = AttentionRecorder::Active()) recorder->Add(&module, module.Maps(x));
  auto* cbam = InferencePlan::Active() != nullptr ? dynamic_cast<modules::CbamImpl*>(&module) : nullptr;
  if (cbam == nullptr || cbam->gate.defined() || cbam->channel_attn->pool_types != std::vector<std::string>{"avg", "max"}) {
    return module.forward(x);
  }
  modules::CheckInput(x, cbam->channels, "CBAM");
  // TORCH_ATTN_CBAM_KERNELS=0: LibTorch's ops below instead of the three passes.
  if (!runtime::SwitchedOff("TORCH_ATTN_CBAM_KERNELS")) {
    if (x.scalar_type() == at::kFloat) return PlannedCbam<float>(*cbam, x.contiguous(at::MemoryFormat::ChannelsLast));
    if (x.scalar_type() == at::kBFloat16) return PlannedCbam<c10::BFloat16>(*cbam, x.contiguous(at::MemoryFormat::ChannelsLast));
  }
  const int64_t batch = x.size(0);
  auto pooled = torch::cat({torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1), std::get<0>(torch::adaptive_max_pool2d(x, {1, 1})).flatten(1)});
  auto h = cbam->channel_attn->fc->forward(pooled);
  auto weights = (h.narrow(0, 0, batch) + h.narrow(0, batch, batch)).sigmoid_();
  auto y = x * weights.view({batch, -1, 1, 1}).to(x.scalar_type());
  if (!cbam->spatial_attn) return y;
  auto& spatial = *cbam->spatial_attn;
  auto mean = y.mean(1, /*keepdim=*/true);
  // LibTorch 1.13's bfloat16 max over the channels is 3x slower than a float32 copy's (64 x 64 x
  // 32 x 32: 1.32 against 0.45 ms); the maximum of bfloat16 values is one of them, so exact.
  auto max = y.scalar_type() == at::kBFloat16 ? y.to(at::kFloat).amax(1, /*keepdim=*/true).to(at::kBFloat16) : y.amax(1, /*keepdim=*/true);
  auto map = ConvBnAct(*spatial.conv, spatial.bn ? spatial.bn.get() : nullptr, /*relu=*/false,
                       spatial.max_first ? torch::cat({max, mean}, 1) : torch::cat({mean, max}, 1));
  return y.mul_(map.sigmoid_().to(y.scalar_type()));
}

torch::Tensor AddRelu(torch::Tensor out, const torch::Tensor& identity) {
  if (InferencePlan::Active() != nullptr && out.scalar_type() == at::kFloat && identity.scalar_type() == at::kFloat) {
    return at::_add_relu_(out, identity);
  }
  out += identity;
  return out.relu_();
}

}  // namespace torch_attn::models
