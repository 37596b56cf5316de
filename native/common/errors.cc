#include "common/errors.h"

#include <sstream>

namespace torch_attn {

namespace {

constexpr size_t kMaxLines = 4;
constexpr size_t kMaxChars = 600;

}  // namespace

std::string ShortTorchMessage(const std::string& what) {
  std::istringstream in(what);
  std::string line, out;
  size_t lines = 0;
  while (std::getline(in, line) && lines < kMaxLines) {
    // LibTorch appends where the error was raised and a backtrace: users cannot act on either.
    if (line.rfind("Exception raised from", 0) == 0 || line.rfind("frame #", 0) == 0) break;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (!out.empty()) out += '\n';
    out += line;
    ++lines;
  }
  if (out.size() > kMaxChars) out = out.substr(0, kMaxChars - 3) + "...";
  return out.empty() ? "LibTorch raised an error without a message" : out;
}

}  // namespace torch_attn
