#include "modules/attention.h"

#include "common/errors.h"
#include "modules/cbam.h"
#include "modules/eca.h"
#include "modules/nam.h"
#include "modules/se.h"

namespace torch_attn::modules {

void ValidateAttention(const AttentionOptions& o, int64_t channels) {
  const std::string& kind = o.kind();
  if (kind != "cbam" && kind != "nam" && kind != "se" && kind != "eca" && kind != "none") {
    throw RangeError("attention must be one of 'cbam', 'nam', 'se', 'eca', 'none', got '" + kind + "'");
  }
  if (channels < 1) throw RangeError("attention channels must be at least 1, got " + std::to_string(channels));
  if (kind == "cbam" || kind == "se") {
    if (o.ratio() < 1 || o.ratio() > channels) {
      throw RangeError(kind + " ratio must be from 1 to the channel count (" + std::to_string(channels) +
                       "), got " + std::to_string(o.ratio()));
    }
  }
  if (kind == "cbam") {
    if (o.pool_types().empty()) throw RangeError("cbam poolTypes must list at least one of 'avg', 'max', 'lp', 'lse'");
    for (size_t i = 0; i < o.pool_types().size(); ++i) {
      const auto& t = o.pool_types()[i];
      if (t != "avg" && t != "max" && t != "lp" && t != "lse") {
        throw RangeError("cbam poolTypes may hold 'avg', 'max', 'lp', 'lse', got '" + t + "'");
      }
      for (size_t j = 0; j < i; ++j) {
        if (o.pool_types()[j] == t) throw RangeError("cbam poolTypes lists '" + t + "' twice");
      }
    }
  }
  if (kind == "cbam" && (o.kernel_size() < 1 || o.kernel_size() % 2 == 0 || o.kernel_size() > 31)) {
    throw RangeError("cbam kernelSize must be an odd integer from 1 to 31, got " + std::to_string(o.kernel_size()));
  }
  if (kind == "nam" && o.pixel_size() < 0) {
    throw RangeError("nam pixel size (H*W) must be positive, got " + std::to_string(o.pixel_size()));
  }
  if (kind == "eca" && (o.eca_gamma() < 1 || o.eca_b() < 0)) {
    throw RangeError("eca gamma must be at least 1 and b at least 0");
  }
}

std::shared_ptr<AttentionModule> MakeAttention(const AttentionOptions& options, int64_t channels) {
  ValidateAttention(options, channels);
  const std::string& kind = options.kind();
  if (kind == "cbam") return std::make_shared<CbamImpl>(channels, options);
  if (kind == "nam") return std::make_shared<NamImpl>(channels, options);
  if (kind == "se") return std::make_shared<SeImpl>(channels, options);
  if (kind == "eca") return std::make_shared<EcaImpl>(channels, options);
  return nullptr;
}

torch::Tensor Passthrough(const torch::Tensor& x, const torch::Tensor& attended, const torch::Tensor& gate) {
  return x + gate * (attended - x);
}

void CheckInput(const torch::Tensor& x, int64_t channels, const char* module) {
  if (x.dim() != 4) {
    throw RangeError(std::string(module) + " expects a 4-D input (batch, channels, height, width), got " +
                     std::to_string(x.dim()) + "-D " + c10::str(x.sizes()));
  }
  if (x.size(1) != channels) {
    throw RangeError(std::string(module) + " was built for " + std::to_string(channels) +
                     " channels but the input has " + std::to_string(x.size(1)) + " " + c10::str(x.sizes()));
  }
}

}  // namespace torch_attn::modules
