// Type tags for JS objects made by the addon: a look-alike object is refused, never cast.
#pragma once

#include <napi.h>

namespace torch_attn {

inline bool HasTypeTag(const Napi::Value& value, const napi_type_tag& tag) {
  if (!value.IsObject()) return false;
  bool tagged = false;
  return napi_check_object_type_tag(value.Env(), value, &tag, &tagged) == napi_ok && tagged;
}

inline void SetTypeTag(const Napi::Object& object, const napi_type_tag& tag) {
  NAPI_THROW_IF_FAILED_VOID(object.Env(), napi_type_tag_object(object.Env(), object, &tag));
}

}  // namespace torch_attn
