// Spellings of the config enums, as written in JSON and on the galaxyc
// command line. Parsing is case-insensitive; toString gives the canonical
// spelling (the one toJson writes). toString returns std::string because
// Debian's abseil has its own string_view, which StrCat needs.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "compiler/config/galaxy_config.h"

namespace galaxy::config {

std::string toString(ParallelMode m);     // serial dp tp sp pp galaxy
std::string toString(BlockMethod m);      // None TP SP
std::string toString(PeftMethod m);       // full lora adapter side side_only
std::string toString(Optimizer o);        // sgd adamw
std::string toString(Activation a);       // gelu gelu_new relu swish
std::string toString(PipelineSchedule s); // gpipe 1f1b
std::string toString(DType d);            // fp32 bf16

// Errors read `"x" is not supported; expected one of "a", "b", ...` so a caller
// can prefix the key: `parallel_mode = "x" is not supported; ...`.
absl::StatusOr<ParallelMode> parseParallelMode(std::string_view text);

// A parallel_mode value: a mode, or "pp+MODE" (a pipeline whose stages are
// SPMD groups running MODE: dp, tp, sp or galaxy).
struct ModeSpec {
  ParallelMode mode = ParallelMode::kSerial;
  ParallelMode group = ParallelMode::kSerial; // pp only
};
absl::StatusOr<ModeSpec> parseModeSpec(std::string_view text);
// "pp+tp" for a hybrid pipeline, else toString(mode).
std::string modeString(ParallelMode mode, ParallelMode group);
absl::StatusOr<BlockMethod> parseBlockMethod(std::string_view text);
absl::StatusOr<Optimizer> parseOptimizer(std::string_view text);
absl::StatusOr<Activation> parseActivation(std::string_view text);
absl::StatusOr<PipelineSchedule> parsePipelineSchedule(std::string_view text);
// Also accepts the aliases "float32" and "bfloat16".
absl::StatusOr<DType> parseDType(std::string_view text);

} // namespace galaxy::config
