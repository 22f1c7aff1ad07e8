#include "compiler/config/enum_names.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace galaxy::config {
namespace {

template <typename E> using Names = std::pair<std::string_view, E>;

constexpr Names<ParallelMode> kParallelModes[] = {
    {"serial", ParallelMode::kSerial}, {"dp", ParallelMode::kDP},
    {"tp", ParallelMode::kTP},         {"sp", ParallelMode::kSP},
    {"pp", ParallelMode::kPP},         {"galaxy", ParallelMode::kGalaxy}};
constexpr Names<BlockMethod> kBlockMethods[] = {{"None", BlockMethod::kNone},
                                                {"TP", BlockMethod::kTP},
                                                {"SP", BlockMethod::kSP}};
constexpr Names<PeftMethod> kPeftMethods[] = {
    {"full", PeftMethod::kFull},
    {"lora", PeftMethod::kLora},
    {"adapter", PeftMethod::kAdapter},
    {"side", PeftMethod::kSide},
    {"side_only", PeftMethod::kSideOnly}};
constexpr Names<Optimizer> kOptimizers[] = {{"sgd", Optimizer::kSgd},
                                            {"adamw", Optimizer::kAdamW}};
constexpr Names<Activation> kActivations[] = {
    {"gelu", Activation::kGelu},
    {"gelu_new", Activation::kGeluNew},
    {"relu", Activation::kRelu},
    {"swish", Activation::kSwish},
    {"silu", Activation::kSwish}}; // Hugging Face's name for it
constexpr Names<PipelineSchedule> kSchedules[] = {
    {"gpipe", PipelineSchedule::kGPipe}, {"1f1b", PipelineSchedule::k1F1B}};
// Canonical spellings first: toString writes the first match.
constexpr Names<DType> kDTypes[] = {{"fp32", DType::kF32},
                                    {"bf16", DType::kBF16},
                                    {"float32", DType::kF32},
                                    {"bfloat16", DType::kBF16}};

template <typename E, size_t N>
std::string nameOf(const Names<E> (&table)[N], E value) {
  for (const auto &[name, v] : table)
    if (v == value)
      return std::string(name);
  return "?";
}

template <typename E, size_t N>
absl::StatusOr<E> parseName(const Names<E> (&table)[N], std::string_view text) {
  std::string lower = absl::AsciiStrToLower(std::string(text));
  std::vector<std::string> quoted;
  for (const auto &[name, v] : table) {
    if (absl::AsciiStrToLower(std::string(name)) == lower)
      return v;
    quoted.push_back(absl::StrCat("\"", std::string(name), "\""));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", std::string(text), "\" is not supported; expected one of ",
      absl::StrJoin(quoted, ", ")));
}

} // namespace

std::string toString(ParallelMode m) { return nameOf(kParallelModes, m); }
std::string toString(BlockMethod m) { return nameOf(kBlockMethods, m); }
std::string toString(PeftMethod m) { return nameOf(kPeftMethods, m); }
std::string toString(Optimizer o) { return nameOf(kOptimizers, o); }
std::string toString(Activation a) { return nameOf(kActivations, a); }
std::string toString(PipelineSchedule s) { return nameOf(kSchedules, s); }
std::string toString(DType d) { return nameOf(kDTypes, d); }

absl::StatusOr<ParallelMode> parseParallelMode(std::string_view text) {
  return parseName(kParallelModes, text);
}
absl::StatusOr<ModeSpec> parseModeSpec(std::string_view text) {
  ModeSpec spec;
  if (text.substr(0, 3) == "pp+") {
    absl::StatusOr<ParallelMode> g = parseParallelMode(text.substr(3));
    if (!g.ok() || *g == ParallelMode::kPP || *g == ParallelMode::kSerial)
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", std::string(text),
          "\" is not supported; a hybrid pipeline is \"pp+dp\", \"pp+tp\", "
          "\"pp+sp\" or \"pp+galaxy\""));
    spec.mode = ParallelMode::kPP;
    spec.group = *g;
    return spec;
  }
  absl::StatusOr<ParallelMode> m = parseParallelMode(text);
  if (!m.ok())
    return absl::InvalidArgumentError(absl::StrCat(
        m.status().message(), " (or \"pp+MODE\" for a hybrid pipeline)"));
  spec.mode = *m;
  return spec;
}

std::string modeString(ParallelMode mode, ParallelMode group) {
  if (mode == ParallelMode::kPP && group != ParallelMode::kSerial)
    return absl::StrCat("pp+", toString(group));
  return toString(mode);
}

absl::StatusOr<BlockMethod> parseBlockMethod(std::string_view text) {
  return parseName(kBlockMethods, text);
}
absl::StatusOr<Optimizer> parseOptimizer(std::string_view text) {
  return parseName(kOptimizers, text);
}
absl::StatusOr<Activation> parseActivation(std::string_view text) {
  return parseName(kActivations, text);
}
absl::StatusOr<PipelineSchedule> parsePipelineSchedule(std::string_view text) {
  return parseName(kSchedules, text);
}
absl::StatusOr<DType> parseDType(std::string_view text) {
  return parseName(kDTypes, text);
}

} // namespace galaxy::config
