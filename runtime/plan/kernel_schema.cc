#include "runtime/plan/kernel_schema.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace galaxy::schema {
namespace {
#include "runtime/plan/kernel_schema.inc"
} // namespace

const AttrSchema *KernelSchema::findAttr(std::string_view attr) const {
  for (const AttrSchema &a : attrs)
    if (a.name == attr)
      return &a;
  return nullptr;
}

std::span<const KernelSchema> allKernels() { return kKernels; }

const KernelSchema *findKernel(std::string_view name) {
  auto it = std::lower_bound(
      std::begin(kKernels), std::end(kKernels), name,
      [](const KernelSchema &k, std::string_view n) { return k.name < n; });
  return it != std::end(kKernels) && it->name == name ? &*it : nullptr;
}

const OpKernel *kernelOfOp(std::string_view mnemonic) {
  auto it = std::lower_bound(
      std::begin(kOpKernels), std::end(kOpKernels), mnemonic,
      [](const OpKernel &k, std::string_view n) { return k.op < n; });
  return it != std::end(kOpKernels) && it->op == mnemonic ? &*it : nullptr;
}

std::string_view typeName(AttrType t) {
  switch (t) {
  case AttrType::kInt:
    return "int";
  case AttrType::kFloat:
    return "float";
  case AttrType::kString:
    return "string";
  case AttrType::kInts:
    return "ints";
  }
  return "?";
}

bool typeOf(const plan::Attr &a, AttrType &out) {
  switch (a.value_case()) {
  case plan::Attr::kI:
    out = AttrType::kInt;
    return true;
  case plan::Attr::kF:
    out = AttrType::kFloat;
    return true;
  case plan::Attr::kS:
    out = AttrType::kString;
    return true;
  case plan::Attr::kInts:
    out = AttrType::kInts;
    return true;
  default:
    return false;
  }
}

absl::Status checkAttr(const KernelSchema &kernel, std::string_view attr,
                       const plan::Attr &value) {
  const AttrSchema *a = kernel.findAttr(attr);
  if (!a)
    return absl::InvalidArgumentError(absl::StrFormat(
        "kernel '%s' has no attribute '%s' in the kernel schema "
        "(dialects/include/galaxy/GalaxyOps.td)",
        kernel.name, attr));
  AttrType t;
  if (!typeOf(value, t))
    return absl::InvalidArgumentError(
        absl::StrFormat("attribute '%s' of kernel '%s' carries no value; the "
                        "schema wants %s",
                        attr, kernel.name, typeName(a->type)));
  if (t != a->type)
    return absl::InvalidArgumentError(absl::StrFormat(
        "attribute '%s' of kernel '%s' is %s; the schema wants %s", attr,
        kernel.name, typeName(t), typeName(a->type)));
  return absl::OkStatus();
}

} // namespace galaxy::schema
