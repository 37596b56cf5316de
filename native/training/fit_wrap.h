// N-API entries of the fine-tuner: fitStage (a stage on its own thread, events through a
// thread-safe function), evaluate, the cancel control, training checkpoints and RNG state.
#pragma once

#include <napi.h>

namespace torch_attn::training {

void RegisterFit(Napi::Env env, Napi::Object exports);

}  // namespace torch_attn::training
