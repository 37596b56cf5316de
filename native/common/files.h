// Files written whole or not at all: a temporary beside the target, flushed to disk, renamed.
#pragma once

#include <string>

namespace torch_attn {

// Throws CheckpointError naming the path when it cannot write.
void WriteFileAtomic(const std::string& path, const char* data, size_t size);

}  // namespace torch_attn
