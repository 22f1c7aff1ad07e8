#include "compiler/config/split.h"

namespace galaxy::config {

std::vector<int64_t> evenSplit(int64_t total, int64_t parts) {
  if (parts <= 0)
    return {};
  std::vector<int64_t> out(parts, total / parts);
  for (int64_t i = 0; i < total % parts; ++i)
    ++out[i];
  return out;
}

} // namespace galaxy::config
