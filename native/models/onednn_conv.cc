#include "models/onednn_conv.h"

#include <algorithm>
#include <string>

#include "models/winograd.h"
#include "runtime/fast_paths.h"
#include "runtime/onednn.h"

#if TORCH_ATTN_DIRECT_ONEDNN
#include <ATen/Parallel.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace torch_attn::models {

bool WinogradFp32Pays(int64_t n, int64_t in_channels, int64_t oh, int64_t ow) {
  return n * ((oh + 3) / 4) * ((ow + 3) / 4) * in_channels >= kWinogradFp32MinTileChannels;
}

#if TORCH_ATTN_DIRECT_ONEDNN

class DirectConv {
 public:
  dnnl::convolution_forward primitive;
  dnnl::memory::desc src, dst;
  std::shared_ptr<dnnl::memory> weights;  // in the primitive's layout; shared with siblings
  dnnl::memory::desc weights_desc;
  torch::Tensor bias;
  dnnl::memory bias_memory;
  dnnl::memory::desc scratchpad;
  int64_t scratchpad_bytes = 0;
  std::vector<int64_t> out_shape;
  at::ScalarType dtype;
  bool residual = false;
  // Winograd: the primitive works on nChw16c; the input, the output (and, with residual, the
  // identity it adds) pass through these reorders on either side of it.
  bool winograd = false;
  dnnl::memory::desc blocked_src, blocked_dst;
  dnnl::reorder src_in, dst_in, dst_out;
  // Winograd by winograd.h's kernel (F(2x2, 3x3) or F(4x4, 3x3)): its transformed weights; no
  // oneDNN primitive.
  torch::Tensor own_winograd;
  bool relu = false;
};

namespace {

const dnnl::engine& Engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& Stream() {
  thread_local dnnl::stream stream(Engine());
  return stream;
}

dnnl::memory::data_type DataType(at::ScalarType t) {
  return t == at::kBFloat16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
}

dnnl::memory::dims Dims(c10::IntArrayRef sizes) { return dnnl::memory::dims(sizes.begin(), sizes.end()); }

bool WinogradEnabled() {
  static const bool enabled = !runtime::SwitchedOff("TORCH_ATTN_WINOGRAD");
  return enabled;
}

at::Tensor Bytes(int64_t n) { return at::empty({n}, at::TensorOptions().dtype(at::kByte)); }

}  // namespace

bool DirectConvAvailable() {
  static const bool available = [] {
    // TORCH_ATTN_DIRECT_ONEDNN=0 in the environment: the prepacked ops instead (for comparisons).
    if (runtime::SwitchedOff("TORCH_ATTN_DIRECT_ONEDNN")) return false;
    const std::string want = std::to_string(DNNL_VERSION_MAJOR) + "." + std::to_string(DNNL_VERSION_MINOR) + ".";
    return runtime::GetOneDnn().version.rfind(want, 0) == 0;
  }();
  return available;
}

std::shared_ptr<const DirectConv> MakeDirectConv(const torch::Tensor& weight, const torch::Tensor& bias, std::array<int64_t, 2> stride,
                                                 std::array<int64_t, 2> padding, bool relu, bool residual, const torch::Tensor& x,
                                                 const std::vector<std::shared_ptr<const DirectConv>>& siblings, int64_t winograd_budget,
                                                 int64_t* added_bytes) {
  if (added_bytes != nullptr) *added_bytes = 0;
  if (!DirectConvAvailable() || x.dim() != 4 || weight.dim() != 4 || x.size(1) != weight.size(1) || x.scalar_type() != weight.scalar_type() || !x.is_contiguous(at::MemoryFormat::ChannelsLast) ||
      !weight.is_contiguous(at::MemoryFormat::ChannelsLast) || bias.scalar_type() != at::kFloat || !bias.is_contiguous()) {
    return nullptr;
  }
  using tag = dnnl::memory::format_tag;
  const auto dt = DataType(x.scalar_type());
  const int64_t oh = (x.size(2) + 2 * padding[0] - weight.size(2)) / stride[0] + 1;
  const int64_t ow = (x.size(3) + 2 * padding[1] - weight.size(3)) / stride[1] + 1;
  if (oh < 1 || ow < 1) return nullptr;
  auto conv = std::make_shared<DirectConv>();
  conv->dtype = x.scalar_type();
  conv->residual = residual;
  conv->out_shape = {x.size(0), weight.size(0), oh, ow};
  conv->src = dnnl::memory::desc(Dims(x.sizes()), dt, tag::nhwc);
  conv->dst = dnnl::memory::desc(Dims(conv->out_shape), dt, tag::nhwc);
  const dnnl::memory::desc any_weights(Dims(weight.sizes()), dt, tag::any);
  const dnnl::memory::desc bias_desc({weight.size(0)}, dnnl::memory::data_type::f32, tag::a);
  dnnl::post_ops ops;
  if (residual) ops.append_sum(1.f);
  if (relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  const bool winograd_shape = weight.size(2) == 3 && weight.size(3) == 3 && stride[0] == 1 && stride[1] == 1;
  // winograd.h's kernel wherever it fits and the input gives it enough tiles, in either
  // precision (float32: F(4x4, 3x3) where WinogradF4Pays, else F(2x2, 3x3)); oneDNN's float32
  // Winograd below only where it does not fit (output channels not in multiples of 64) or has too
  // few tiles. In float32 F(2x2) alone was faster than oneDNN's F(4x4, 3x3) at every batch
  // measured (ResNet18-CBAM, 32 x 32, plans taking turns in one process: batch 2 7.56 against
  // 8.06 ms, 8 21.3 against 22.2, 32 65.2 against 72.3, 64 125 against 156; at 224 x 224, batch
  // 8, 0.86 against 2.13 s), and at batch 1, where oneDNN's does not pay, 2.5% faster than the
  // direct form (4.49 against 4.61 ms: layer3 and layer4 are bound by reading their weights,
  // which Winograd would enlarge); its own F(4x4) gains again on F(2x2) (winograd.h).
  const bool own_winograd = winograd_shape && padding[0] == 1 && padding[1] == 1 && WinogradSupported(x.scalar_type()) &&
                            WinogradFits(weight.size(1), weight.size(0)) && WinogradPays(x.scalar_type(), x.size(0), oh, ow);
  if (winograd_budget > 0 && WinogradEnabled() && own_winograd) {
    // F(4x4, 3x3) where it pays, else F(2x2, 3x3): the first whose weights a sibling lends or
    // the budget holds. Held instead of the plain weights the direct form would reorder: only
    // the difference (7/9 of them for F(2x2), 3x for F(4x4)) is added.
    std::vector<int> tiles;
    if (WinogradF4Pays(x.scalar_type(), x.size(0), oh, ow, weight.size(1), weight.size(0))) tiles.push_back(4);
    tiles.push_back(2);
    for (const int tile : tiles) {
      for (const auto& s : siblings) {
        if (s && WinogradTile(s->own_winograd) == tile) conv->own_winograd = s->own_winograd;
      }
      if (conv->own_winograd.defined()) break;
      const int64_t bytes = WinogradWeightBytes(x.scalar_type(), weight.size(1), weight.size(0), tile) - static_cast<int64_t>(weight.nbytes());
      if (bytes <= winograd_budget) {  // transformed only when they fit
        conv->own_winograd = WinogradWeights(weight, tile);
        if (added_bytes != nullptr) *added_bytes = bytes;
        break;
      }
    }
    if (conv->own_winograd.defined()) {
      conv->winograd = true;
      conv->relu = relu;
      conv->bias = bias;
      return conv;
    }
  }
  try {
    // float32 3 x 3 convolutions of stride 1 that winograd.h's kernel does not take, by oneDNN's
    // Winograd (F(4x4, 3x3), or F(2x2, 3x3) on small inputs) where oneDNN has it for this CPU
    // (AVX-512): at batch 64 on this project's machine, before winograd.h took float32,
    // 9-13 ms against the direct form's 20-25 per ResNet18 convolution, 1.2-2.6x faster with the
    // reorders to and from the blocked layout it needs; within ~2e-6 of the direct form per
    // convolution, relative to the output's largest value (the plan's tests hold logits to 1e-4).
    dnnl::convolution_forward::primitive_desc pd;
    if (winograd_budget > 0 && WinogradEnabled() && winograd_shape && dt == dnnl::memory::data_type::f32 && x.size(1) % 16 == 0 &&
        weight.size(0) % 16 == 0 && WinogradFp32Pays(x.size(0), x.size(1), oh, ow)) {
      const dnnl::memory::desc bsrc(Dims(x.sizes()), dt, tag::nChw16c), bdst(Dims(conv->out_shape), dt, tag::nChw16c);
      const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_winograd, bsrc, any_weights,
                                                 bias_desc, bdst, Dims(stride), Dims(padding), Dims(padding));
      pd = dnnl::convolution_forward::primitive_desc(desc, attr, Engine(), /*allow_empty=*/true);
      const bool lent = pd && std::any_of(siblings.begin(), siblings.end(), [&](const auto& s) { return s && s->weights_desc == pd.weights_desc(); });
      if (pd && !lent && static_cast<int64_t>(pd.weights_desc().get_size()) > winograd_budget) pd = {};
      if (pd) {
        conv->winograd = true;
        conv->blocked_src = bsrc;
        conv->blocked_dst = bdst;
        conv->src_in = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), conv->src, Engine(), bsrc));
        conv->dst_out = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), bdst, Engine(), conv->dst));
        if (residual) conv->dst_in = dnnl::reorder(dnnl::reorder::primitive_desc(Engine(), conv->dst, Engine(), bdst));
      }
    }
    if (!pd) {
      const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, conv->src, any_weights,
                                                 bias_desc, conv->dst, Dims(stride), Dims(padding), Dims(padding));
      pd = dnnl::convolution_forward::primitive_desc(desc, attr, Engine(), /*allow_empty=*/true);
    }
    if (!pd) return nullptr;
    conv->primitive = dnnl::convolution_forward(pd);
    conv->weights_desc = pd.weights_desc();
    conv->scratchpad = pd.scratchpad_desc();
    conv->scratchpad_bytes = static_cast<int64_t>(conv->scratchpad.get_size());
    for (const auto& s : siblings) {
      if (s && s->weights_desc == conv->weights_desc) conv->weights = s->weights;
    }
    if (!conv->weights) {
      // The folded weights as they lie (OIHW dims, channels-last strides), reordered once; oneDNN
      // reorders into Winograd's layout only from plain OIHW.
      const auto source = conv->winograd ? weight.contiguous() : weight;
      const dnnl::memory::desc plain(Dims(source.sizes()), dt, Dims(source.strides()));
      dnnl::memory from(plain, Engine(), source.data_ptr());
      conv->weights = std::make_shared<dnnl::memory>(conv->weights_desc, Engine());
      dnnl::reorder(from, *conv->weights).execute(Stream(), from, *conv->weights);
      Stream().wait();
      if (added_bytes != nullptr && conv->winograd) *added_bytes = static_cast<int64_t>(conv->weights_desc.get_size());
    }
    conv->bias = bias;
    conv->bias_memory = dnnl::memory(bias_desc, Engine(), bias.data_ptr());
  } catch (const dnnl::error&) {
    if (added_bytes != nullptr) *added_bytes = 0;
    return nullptr;  // no implementation here: the prepacked ops take it
  }
  return conv;
}

torch::Tensor RunDirectConv(const DirectConv& conv, const torch::Tensor& x, const torch::Tensor& accumulate) {
  if (x.sizes() != c10::IntArrayRef(conv.src.dims()) || x.scalar_type() != conv.dtype || !x.is_contiguous(at::MemoryFormat::ChannelsLast) ||
      conv.residual != accumulate.defined() ||
      (conv.residual && (accumulate.sizes() != c10::IntArrayRef(conv.out_shape) || accumulate.scalar_type() != conv.dtype ||
                         !accumulate.is_contiguous(at::MemoryFormat::ChannelsLast)))) {
    throw std::logic_error("RunDirectConv: an input unlike the one the convolution was prepared for");
  }
  at::internal::lazy_init_num_threads();  // this thread's OpenMP team: LibTorch's thread count
  auto out = conv.residual ? accumulate : at::empty(conv.out_shape, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  if (conv.own_winograd.defined()) {
    RunWinograd(x, conv.own_winograd, conv.bias, conv.relu, conv.residual, out);
    return out;
  }
  dnnl::memory src(conv.src, Engine(), x.data_ptr()), dst(conv.dst, Engine(), out.data_ptr());
  torch::Tensor blocked_src, blocked_dst, scratchpad;
  dnnl::memory conv_src = src, conv_dst = dst;
  if (conv.winograd) {
    blocked_src = Bytes(static_cast<int64_t>(conv.blocked_src.get_size()));
    blocked_dst = Bytes(static_cast<int64_t>(conv.blocked_dst.get_size()));
    conv_src = dnnl::memory(conv.blocked_src, Engine(), blocked_src.data_ptr());
    conv_dst = dnnl::memory(conv.blocked_dst, Engine(), blocked_dst.data_ptr());
    conv.src_in.execute(Stream(), src, conv_src);
    if (conv.residual) conv.dst_in.execute(Stream(), dst, conv_dst);
  }
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, conv_src}, {DNNL_ARG_WEIGHTS, *conv.weights}, {DNNL_ARG_BIAS, conv.bias_memory}, {DNNL_ARG_DST, conv_dst}};
  if (conv.scratchpad_bytes > 0) {
    scratchpad = Bytes(conv.scratchpad_bytes);
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(conv.scratchpad, Engine(), scratchpad.data_ptr()));
  }
  conv.primitive.execute(Stream(), args);
  if (conv.winograd) conv.dst_out.execute(Stream(), conv_dst, dst);
  Stream().wait();
  return out;
}

int64_t DirectConvWeightBytes(const DirectConv& conv) {
  return conv.own_winograd.defined() ? static_cast<int64_t>(conv.own_winograd.nbytes()) : static_cast<int64_t>(conv.weights_desc.get_size());
}

bool DirectConvIsWinograd(const DirectConv& conv) { return conv.winograd; }

bool DirectConvIsWinogradF4(const DirectConv& conv) { return WinogradTile(conv.own_winograd) == 4; }

#else  // built without oneDNN's headers, or against a LibTorch that does not link it as a library

class DirectConv {};

bool DirectConvAvailable() { return false; }

std::shared_ptr<const DirectConv> MakeDirectConv(const torch::Tensor&, const torch::Tensor&, std::array<int64_t, 2>, std::array<int64_t, 2>, bool,
                                                 bool, const torch::Tensor&, const std::vector<std::shared_ptr<const DirectConv>>&, int64_t,
                                                 int64_t* added_bytes) {
  if (added_bytes != nullptr) *added_bytes = 0;
  return nullptr;
}

torch::Tensor RunDirectConv(const DirectConv&, const torch::Tensor&, const torch::Tensor&) {
  throw std::logic_error("RunDirectConv: this build has no direct oneDNN convolutions");
}

int64_t DirectConvWeightBytes(const DirectConv&) { return 0; }

bool DirectConvIsWinograd(const DirectConv&) { return false; }

bool DirectConvIsWinogradF4(const DirectConv&) { return false; }

#endif

}  // namespace torch_attn::models
