// The dtype table: torch-attn's dtype names, LibTorch scalar types and the TypedArray each one
// travels in between JS and C++.
#pragma once

#include <c10/core/ScalarType.h>
#include <js_native_api_types.h>

#include <string>

#include "common/no_dangling.h"

namespace torch_attn::tensor {

struct DType {
  const char* name;              // 'float32', 'int64', ... as in the TypeScript DType union
  c10::ScalarType scalar;        // the LibTorch type
  napi_typedarray_type array;    // the TypedArray data() returns and tensor() accepts
  bool floating;                 // randn and friends accept only these
};

// Throws RangeError naming the allowed dtypes.
TA_NO_DANGLING const DType& DTypeByName(const std::string& name, const std::string& what);
// Throws RangeError for LibTorch types torch-attn does not expose (complex, quantized).
const DType& DTypeOf(c10::ScalarType scalar);
// The natural dtype of a TypedArray's elements (Uint8Array -> uint8).
const DType& DTypeOfArray(napi_typedarray_type array);
std::string AllowedDTypes();
// The floating ones, as "float32, float64, ...".
std::string FloatingDTypes();

}  // namespace torch_attn::tensor
