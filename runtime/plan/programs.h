// Which programs of a plan read a dataset's batches.
#pragma once

#include <string>

namespace galaxy::plan {

// The generation programs of a causal-LM plan (prefill, decode) and of a
// seq2seq one (encode, decode) are fed by
// the generator (runtime/exec/generate.h) with prompts, positions and KV
// caches, not with dataset batches: the data checks leave them out.
inline bool isGenerationProgram(const std::string &name) {
  return name == "prefill" || name == "encode" || name == "decode";
}

} // namespace galaxy::plan
