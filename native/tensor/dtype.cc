#include "tensor/dtype.h"

#include "common/errors.h"

namespace torch_attn::tensor {

namespace {

// float16 and bfloat16 travel as their raw 16-bit patterns in a Uint16Array (Node 20 has no
// Float16Array); toFloat32Array() is the converting read.
const DType kDTypes[] = {
    {"float32", c10::ScalarType::Float, napi_float32_array, true},
    {"float64", c10::ScalarType::Double, napi_float64_array, true},
    {"float16", c10::ScalarType::Half, napi_uint16_array, true},
    {"bfloat16", c10::ScalarType::BFloat16, napi_uint16_array, true},
    {"int64", c10::ScalarType::Long, napi_bigint64_array, false},
    {"int32", c10::ScalarType::Int, napi_int32_array, false},
    {"int16", c10::ScalarType::Short, napi_int16_array, false},
    {"int8", c10::ScalarType::Char, napi_int8_array, false},
    {"uint8", c10::ScalarType::Byte, napi_uint8_array, false},
    {"bool", c10::ScalarType::Bool, napi_uint8_array, false},
};

}  // namespace

std::string AllowedDTypes() {
  std::string out;
  for (const auto& d : kDTypes) {
    if (!out.empty()) out += ", ";
    out += std::string("'") + d.name + "'";
  }
  return out;
}

std::string FloatingDTypes() {
  std::string out;
  for (const auto& d : kDTypes) {
    if (!d.floating) continue;
    if (!out.empty()) out += ", ";
    out += d.name;
  }
  return out;
}

const DType& DTypeByName(const std::string& name, const std::string& what) {
  for (const auto& d : kDTypes) {
    if (name == d.name) return d;
  }
  throw RangeError(what + " must be one of " + AllowedDTypes() + ", got '" + name + "'");
}

const DType& DTypeOf(c10::ScalarType scalar) {
  for (const auto& d : kDTypes) {
    if (scalar == d.scalar) return d;
  }
  throw RangeError(std::string("tensors of LibTorch type ") + c10::toString(scalar) +
                   " cannot be handed to JS; allowed dtypes are " + AllowedDTypes());
}

const DType& DTypeOfArray(napi_typedarray_type array) {
  switch (array) {
    case napi_float32_array: return kDTypes[0];
    case napi_float64_array: return kDTypes[1];
    case napi_bigint64_array: return kDTypes[4];
    case napi_int32_array: return kDTypes[5];
    case napi_int16_array: return kDTypes[6];
    case napi_int8_array: return kDTypes[7];
    case napi_uint8_array:
    case napi_uint8_clamped_array: return kDTypes[8];
    default:
      throw TypeError(
          "tensor data must be a Float32Array, Float64Array, BigInt64Array, Int32Array, Int16Array, "
          "Int8Array or Uint8Array (Uint16Array, Uint32Array and BigUint64Array have no LibTorch dtype)");
  }
}

}  // namespace torch_attn::tensor
