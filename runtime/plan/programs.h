// Which programs of a plan read a dataset's batches.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace galaxy::plan {

// The generation programs of a causal-LM plan (prefill, decode) and of a
// seq2seq one (encode, decode) are fed by
// the generator (runtime/exec/generate.h) with prompts, positions and KV
// caches, not with dataset batches: the data checks leave them out.
inline bool isGenerationProgram(const std::string &name) {
  return name == "prefill" || name == "encode" || name == "decode";
}

// A generation program's KV-cache ports, "cache.<k|v>.<layer>": the
// partitioner keeps them in their attention block's layout and the generator
// carries them between programs on each rank, never through the host.
inline std::string cachePort(std::string_view kv, int64_t layer) {
  return "cache." + std::string(kv) + "." + std::to_string(layer);
}
inline bool isCachePort(std::string_view name) {
  return name.substr(0, 6) == "cache.";
}

} // namespace galaxy::plan
