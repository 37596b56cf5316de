// Argument readers for N-API entry points: each checks the JS type and range and throws a
// TypeError / RangeError naming the argument, what is allowed and what was received.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace torch_attn::args {

// "a string", "an Array", "null", "a Tensor"... for "Expected X for Y but received Z" messages.
std::string Describe(const Napi::Value& value);

[[noreturn]] void ThrowType(const std::string& what, const std::string& expected, const Napi::Value& got);

double Number(const Napi::Value& value, const std::string& what);
int64_t Integer(const Napi::Value& value, const std::string& what, int64_t min, int64_t max);
// A 64-bit seed: a non-negative safe integer or a bigint below 2^64.
uint64_t Seed(const Napi::Value& value, const std::string& what);
bool Boolean(const Napi::Value& value, const std::string& what);
std::string String(const Napi::Value& value, const std::string& what);

// Optional fields of an options object: `fallback` when the field is undefined, else checked
// as the readers above check arguments (the field's name in the message).
int64_t IntegerField(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, int64_t max);
double NumberField(const Napi::Object& o, const char* key, double fallback);
bool BooleanField(const Napi::Object& o, const char* key, bool fallback);
std::string StringField(const Napi::Object& o, const char* key, const std::string& fallback);

// An Array of strings (names, pool types, ...).
std::vector<std::string> Strings(const Napi::Value& value, const std::string& what);

// A copy of a TypedArray's values, which must be of `type` (T its element type).
template <typename T>
std::vector<T> TypedValues(const Napi::Value& value, napi_typedarray_type type, const std::string& what, const char* expected) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) ThrowType(what, expected, value);
  auto array = value.As<Napi::TypedArray>();
  const auto* data = reinterpret_cast<const T*>(static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset());
  return std::vector<T>(data, data + array.ElementLength());
}

// A shape: an Array of non-negative safe integers.
std::vector<int64_t> Shape(const Napi::Value& value, const std::string& what);

}  // namespace torch_attn::args
