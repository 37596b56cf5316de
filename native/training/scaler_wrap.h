// Loss-scaling options from JS, and gradScalerSteps(), which runs the fine-tuner's GradScaler
// over given gradients (what the tests drive on CPU tensors: fp16 training itself needs CUDA).
#pragma once

#include <napi.h>

#include "training/grad_scaler.h"

namespace torch_attn::training {

// { initScale, growthFactor, backoffFactor, growthInterval }, each optional (PyTorch's defaults).
ScalerOptions ReadScalerOptions(const Napi::Value& value, const std::string& what);

void RegisterScaler(Napi::Env env, Napi::Object exports);

}  // namespace torch_attn::training
