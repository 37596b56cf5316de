#include "common/args.h"

#include <cmath>

#include "common/js_errors.h"

namespace torch_attn::args {

namespace {
constexpr double kMaxSafeInteger = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER
constexpr size_t kMaxDims = 64;
}  // namespace

std::string Describe(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return value.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: return "the number " + value.ToString().Utf8Value();
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    case napi_bigint: return "a bigint";
    case napi_external: return "an external";
    case napi_object: {
      if (value.IsArray()) return "an Array";
      if (value.IsTypedArray()) return "a TypedArray";
      if (value.IsArrayBuffer()) return "an ArrayBuffer";
      Napi::Value ctor = value.As<Napi::Object>().Get("constructor");
      if (ctor.IsFunction()) {
        std::string name = ctor.As<Napi::Object>().Get("name").ToString().Utf8Value();
        if (!name.empty() && name != "Object") return "an instance of " + name;
      }
      return "a plain object";
    }
    default: return "a value of unknown type";
  }
}

void ThrowType(const std::string& what, const std::string& expected, const Napi::Value& got) {
  throw TypeError("Expected " + expected + " for " + what + " but received " + Describe(got));
}

double Number(const Napi::Value& value, const std::string& what) {
  if (!value.IsNumber()) ThrowType(what, "a number", value);
  double v = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v)) throw RangeError(what + " must be finite, got " + value.ToString().Utf8Value());
  return v;
}

int64_t Integer(const Napi::Value& value, const std::string& what, int64_t min, int64_t max) {
  if (!value.IsNumber()) ThrowType(what, "an integer", value);
  double v = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || std::trunc(v) != v || std::fabs(v) > kMaxSafeInteger) {
    throw RangeError("Expected an integer for " + what + " but received " + value.ToString().Utf8Value());
  }
  auto i = static_cast<int64_t>(v);
  if (i < min || i > max) {
    std::string allowed = static_cast<double>(max) >= kMaxSafeInteger
                              ? "at least " + std::to_string(min)
                              : "from " + std::to_string(min) + " to " + std::to_string(max);
    throw RangeError(what + " must be " + allowed + ", got " + std::to_string(i));
  }
  return i;
}

bool Boolean(const Napi::Value& value, const std::string& what) {
  if (!value.IsBoolean()) ThrowType(what, "a boolean", value);
  return value.As<Napi::Boolean>().Value();
}

std::string String(const Napi::Value& value, const std::string& what) {
  if (!value.IsString()) ThrowType(what, "a string", value);
  return value.As<Napi::String>().Utf8Value();
}

uint64_t Seed(const Napi::Value& value, const std::string& what) {
  if (value.IsBigInt()) {
    bool lossless = false;
    uint64_t seed = value.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw RangeError(what + ": a bigint seed must be from 0 to 2^64 - 1");
    return seed;
  }
  if (!value.IsNumber()) ThrowType(what, "a seed (a non-negative integer or a bigint)", value);
  return static_cast<uint64_t>(Integer(value, what, 0, static_cast<int64_t>(kMaxSafeInteger)));
}

int64_t IntegerField(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? fallback : Integer(v, key, min, max);
}

double NumberField(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? fallback : Number(v, key);
}

bool BooleanField(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? fallback : Boolean(v, key);
}

std::string StringField(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? fallback : String(v, key);
}

std::vector<std::string> Strings(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) ThrowType(what, "an Array of strings", value);
  auto array = value.As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) out.push_back(String(array.Get(i), what + "[" + std::to_string(i) + "]"));
  return out;
}

std::vector<int64_t> Shape(const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) ThrowType(what, "an Array of non-negative integers", value);
  auto array = value.As<Napi::Array>();
  if (array.Length() > kMaxDims) {
    throw RangeError(what + " has " + std::to_string(array.Length()) + " dimensions; at most " +
                     std::to_string(kMaxDims) + " are allowed");
  }
  std::vector<int64_t> shape;
  shape.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    shape.push_back(Integer(array.Get(i), what + "[" + std::to_string(i) + "]", 0,
                            static_cast<int64_t>(kMaxSafeInteger)));
  }
  return shape;
}

}  // namespace torch_attn::args
