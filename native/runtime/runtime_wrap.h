// JS functions for the process-wide settings in runtime.h.
#pragma once

#include <napi.h>

namespace torch_attn::runtime {

void Register(Napi::Env env, Napi::Object exports);

}  // namespace torch_attn::runtime
