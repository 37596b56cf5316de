#include "models/onednn_conv.h"

#include <cstdlib>
#include <string>

#include "runtime/onednn.h"

#if TORCH_ATTN_DIRECT_ONEDNN
#include <ATen/Parallel.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace torch_attn::models {

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

}  // namespace

bool DirectConvAvailable() {
  static const bool available = [] {
    // TORCH_ATTN_DIRECT_ONEDNN=0 in the environment: the prepacked ops instead (for comparisons).
    const char* env = std::getenv("TORCH_ATTN_DIRECT_ONEDNN");
    if (env != nullptr && std::string(env) == "0") return false;
    const std::string want = std::to_string(DNNL_VERSION_MAJOR) + "." + std::to_string(DNNL_VERSION_MINOR) + ".";
    return runtime::GetOneDnn().version.rfind(want, 0) == 0;
  }();
  return available;
}

std::shared_ptr<const DirectConv> MakeDirectConv(const torch::Tensor& weight, const torch::Tensor& bias, std::array<int64_t, 2> stride,
                                                 std::array<int64_t, 2> padding, bool relu, bool residual, const torch::Tensor& x,
                                                 const std::vector<std::shared_ptr<const DirectConv>>& siblings) {
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
  try {
    const dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, conv->src, any_weights,
                                               bias_desc, conv->dst, Dims(stride), Dims(padding), Dims(padding));
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, Engine(), /*allow_empty=*/true);
    if (!pd) return nullptr;
    conv->primitive = dnnl::convolution_forward(pd);
    conv->weights_desc = pd.weights_desc();
    conv->scratchpad = pd.scratchpad_desc();
    conv->scratchpad_bytes = static_cast<int64_t>(conv->scratchpad.get_size());
    for (const auto& s : siblings) {
      if (s && s->weights_desc == conv->weights_desc) conv->weights = s->weights;
    }
    if (!conv->weights) {
      // The folded weights as they lie (OIHW dims, channels-last strides), reordered once.
      const dnnl::memory::desc plain(Dims(weight.sizes()), dt, Dims(weight.strides()));
      dnnl::memory from(plain, Engine(), weight.data_ptr());
      conv->weights = std::make_shared<dnnl::memory>(conv->weights_desc, Engine());
      dnnl::reorder(from, *conv->weights).execute(Stream(), from, *conv->weights);
      Stream().wait();
    }
    conv->bias = bias;
    conv->bias_memory = dnnl::memory(bias_desc, Engine(), bias.data_ptr());
  } catch (const dnnl::error&) {
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
  dnnl::memory src(conv.src, Engine(), x.data_ptr()), dst(conv.dst, Engine(), out.data_ptr());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, *conv.weights}, {DNNL_ARG_BIAS, conv.bias_memory}, {DNNL_ARG_DST, dst}};
  torch::Tensor scratchpad;
  if (conv.scratchpad_bytes > 0) {
    scratchpad = at::empty({conv.scratchpad_bytes}, x.options().dtype(at::kByte).memory_format(at::MemoryFormat::Contiguous));
    args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(conv.scratchpad, Engine(), scratchpad.data_ptr()));
  }
  conv.primitive.execute(Stream(), args);
  Stream().wait();
  return out;
}

int64_t DirectConvWeightBytes(const DirectConv& conv) { return static_cast<int64_t>(conv.weights_desc.get_size()); }

#else  // built without oneDNN's headers, or against a LibTorch that does not link it as a library

class DirectConv {};

bool DirectConvAvailable() { return false; }

std::shared_ptr<const DirectConv> MakeDirectConv(const torch::Tensor&, const torch::Tensor&, std::array<int64_t, 2>, std::array<int64_t, 2>, bool,
                                                 bool, const torch::Tensor&, const std::vector<std::shared_ptr<const DirectConv>>&) {
  return nullptr;
}

torch::Tensor RunDirectConv(const DirectConv&, const torch::Tensor&, const torch::Tensor&) {
  throw std::logic_error("RunDirectConv: this build has no direct oneDNN convolutions");
}

int64_t DirectConvWeightBytes(const DirectConv&) { return 0; }

#endif

}  // namespace torch_attn::models
