// JSON values (the core's records: epoch records, training progress) as plain JS values, for the
// wrap layer: one conversion, so a record's fields are defined once, by its C++ to_json.
#pragma once

#include <napi.h>

#include <nlohmann/json.hpp>

namespace torch_attn {

inline Napi::Value JsonToJs(Napi::Env env, const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null: return env.Null();
    case nlohmann::ordered_json::value_t::boolean: return Napi::Boolean::New(env, j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned:
    case nlohmann::ordered_json::value_t::number_float: return Napi::Number::New(env, j.get<double>());
    case nlohmann::ordered_json::value_t::string: return Napi::String::New(env, j.get_ref<const std::string&>());
    case nlohmann::ordered_json::value_t::array: {
      auto out = Napi::Array::New(env, j.size());
      uint32_t i = 0;
      for (const auto& item : j) out.Set(i++, JsonToJs(env, item));
      return out;
    }
    case nlohmann::ordered_json::value_t::object: {
      auto out = Napi::Object::New(env);
      for (const auto& [key, value] : j.items()) out.Set(key, JsonToJs(env, value));
      return out;
    }
    default: return env.Undefined();  // binary and discarded values never come from the core's records
  }
}

}  // namespace torch_attn
