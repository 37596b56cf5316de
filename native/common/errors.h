// Errors: the exception types core code throws. No N-API here: the wrap layer turns them (and
// any other C++ exception) into JS errors in common/js_errors.h.
#pragma once

#include <stdexcept>
#include <string>

namespace torch_attn {

// An argument of the wrong type: a JS TypeError.
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// An argument of the right type with a value outside what is allowed: a JS RangeError.
struct RangeError : std::out_of_range {
  using std::out_of_range::out_of_range;
};

// A file that is not a readable checkpoint (truncated, corrupt, wrong format, code in a pickle)
// or a state dict that does not fit: a JS Error with code ERR_TORCH_ATTN_CHECKPOINT.
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A data file or image that cannot be read (missing, truncated, wrong format, undecodable):
// a JS Error with code ERR_TORCH_ATTN_DATA.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Memory that cannot be had, or a size no JS value can hold: a JS RangeError with code
// ERR_TORCH_ATTN_OOM (as std::bad_alloc and LibTorch's allocation failures are).
struct OutOfMemoryError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// An object busy with asynchronous work (see common/claim.h): code ERR_TORCH_ATTN_BUSY.
struct BusyError : std::logic_error {
  using std::logic_error::logic_error;
};

// An object used after dispose(): code ERR_TORCH_ATTN_DISPOSED.
struct DisposedError : std::logic_error {
  using std::logic_error::logic_error;
};

// A collective that failed (a peer died, a timeout), a rendezvous that could not happen (port in
// use), a destroyed process group used: code ERR_TORCH_ATTN_DISTRIBUTED.
struct DistributedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The first lines of a LibTorch message, without the C++ backtrace and "Exception raised from".
std::string ShortTorchMessage(const std::string& what);

}  // namespace torch_attn
