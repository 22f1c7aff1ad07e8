// The plan's kernel schema: every kernel a plan instruction may name, with its
// operands and typed attributes. Generated from the ODS ops
// (dialects/include/galaxy/GalaxyOps.td, GalaxyKernel.td) by galaxy-tblgen at
// build time; the lowering checks what it writes against it, the backends take
// attribute defaults from it and the executor refuses a plan naming a kernel
// it lacks. Plain data: the runtime does not link MLIR.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::schema {

enum class AttrType { kInt, kFloat, kString, kInts };
// Who runs a kernel: every Backend, or the executor itself (data movement).
enum class Runner { kBackend, kExecutor };

struct OperandSchema {
  std::string_view name;
  std::string_view dtype; // "f32", "i32", "f32|i32" or "any"
  bool optional, variadic;
};

struct AttrSchema {
  std::string_view name;
  AttrType type;
  bool required; // no default: a plan without it is malformed
  bool fromOp;   // the op's ODS attribute (else one the lowering adds)
  // The default of its type when not required; ints default to [].
  int64_t intDefault;
  double floatDefault;
  std::string_view stringDefault;
  std::string_view doc;
};

struct KernelSchema {
  std::string_view name;
  Runner runner;
  std::string_view summary;
  std::span<const OperandSchema> inputs, outputs;
  std::span<const AttrSchema> attrs;

  const AttrSchema *findAttr(std::string_view attr) const;
};

struct OpKernel {
  std::string_view op;     // mnemonic without "galaxy."
  std::string_view kernel; // "" when the op lowers to no instruction of its own
};

// Every kernel, sorted by name.
std::span<const KernelSchema> allKernels();
// Null when no kernel has that name.
const KernelSchema *findKernel(std::string_view name);
// The kernel an op lowers to by default; null for an unknown op.
const OpKernel *kernelOfOp(std::string_view mnemonic);

std::string_view typeName(AttrType t);
// The AttrType an Attr carries; false for an Attr with no value set.
bool typeOf(const plan::Attr &a, AttrType &out);

// InvalidArgument naming kernel and attribute when `attr` is not one of
// `kernel`'s attributes or carries a value of another type.
absl::Status checkAttr(const KernelSchema &kernel, std::string_view attr,
                       const plan::Attr &value);

} // namespace galaxy::schema
