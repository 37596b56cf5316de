// N-API entries of the training area: fineTune (a whole staged run on a thread of its own,
// events through a thread-safe function), its cancel control, evaluate, and the progress record
// of a training checkpoint.
#pragma once

#include <napi.h>

namespace torch_attn::training {

void RegisterTuner(Napi::Env env, Napi::Object exports);

}  // namespace torch_attn::training
