#include "models/factory.h"

#include "common/errors.h"
#include "models/resnet.h"
#include "models/vgg.h"

namespace torch_attn::models {

namespace {

void NoPixelVariant(const modules::AttentionOptions& attention) {
  if (attention.pixel_size() > 0) throw RangeError("NAM's pixel variant is available on a standalone NAM module only");
}

}  // namespace

std::shared_ptr<ModelImpl> MakeModel(const ModelSpec& spec) {
  const std::string& arch = spec.arch();
  if (arch == "resnet") {
    NoPixelVariant(spec.attention());
    ResNetOptions o;
    o.depth(spec.depth().value_or(18)).num_classes(spec.num_classes()).stem(spec.stem()).placement(spec.placement());
    o.attention(spec.attention());
    if (spec.stages()) o.stages(*spec.stages());
    return MakeResNet(o);
  }
  if (arch == "vgg") {
    NoPixelVariant(spec.attention());
    VggOptions o;
    o.depth(spec.depth().value_or(16)).num_classes(spec.num_classes()).batch_norm(spec.batch_norm());
    o.stem(spec.stem()).attention(spec.attention());
    return MakeVgg(o);
  }
  if (arch == "cbamcnn") {
    CbamCnnOptions o;
    o.num_classes(spec.num_classes()).attention(spec.attention());
    return MakeCbamCnn(o);
  }
  if (arch == "attention") return std::make_shared<StandaloneAttentionImpl>(spec.attention(), spec.channels());
  throw RangeError("createModel() arch must be 'resnet', 'vgg', 'cbamcnn' or 'attention', got '" + arch + "'");
}

}  // namespace torch_attn::models
