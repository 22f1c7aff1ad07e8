#include "runtime/cpu/kernel_call.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/plan/kernel_schema.h"

namespace galaxy::rt::cpu {

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    absl::StrAppend(&s, i ? "," : "", shape[i]);
  return s + "]";
}

static std::string tensorList(const std::vector<Tensor> &ts) {
  std::string s;
  for (size_t i = 0; i < ts.size(); ++i)
    absl::StrAppend(&s, i ? " " : "", shapeString(ts[i].shape),
                    ts[i].dtype == plan::I32 ? "i32" : "");
  return s.empty() ? "(none)" : s;
}

absl::Status kernelError(const KernelCall &c, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrFormat("kernel '%s' (block '%s'): %s; inputs %s, outputs %s "
                      "(see docs/kernels.md)",
                      c.instr.kernel(), c.instr.block(), why, tensorList(c.in),
                      tensorList(c.out)));
}

absl::Status checkArity(const KernelCall &c, size_t min_in, size_t max_in,
                        size_t n_out) {
  if (c.in.size() < min_in || c.in.size() > max_in || c.out.size() != n_out) {
    std::string want = min_in == max_in ? absl::StrCat(min_in)
                                        : absl::StrCat(min_in, " to ", max_in);
    return kernelError(
        c, absl::StrFormat("expects %s inputs and %d outputs, got %d and %d",
                           want, n_out, c.in.size(), c.out.size()));
  }
  return absl::OkStatus();
}

absl::Status checkDtype(const KernelCall &c, const Tensor &t, plan::DType want,
                        std::string_view what) {
  if (t.dtype == want)
    return absl::OkStatus();
  return kernelError(c, absl::StrFormat("%s must be %s", what,
                                        want == plan::I32 ? "i32" : "f32"));
}

absl::Status checkAllF32(const KernelCall &c) {
  for (const Tensor &t : c.in)
    GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, t, plan::F32, "every input"));
  for (const Tensor &t : c.out)
    GALAXY_CPU_RETURN_IF_ERROR(checkDtype(c, t, plan::F32, "every output"));
  return absl::OkStatus();
}

static const plan::Attr *findAttr(const KernelCall &c, const std::string &key) {
  auto it = c.instr.attrs().find(key);
  return it == c.instr.attrs().end() ? nullptr : &it->second;
}

// The schema's entry for attribute `key` of the call's kernel, read as `want`.
static absl::StatusOr<const schema::AttrSchema *>
declared(const KernelCall &c, const std::string &key, schema::AttrType want) {
  const schema::KernelSchema *k =
      c.schema ? c.schema : schema::findKernel(c.instr.kernel());
  if (!k)
    return kernelError(c, "not a kernel of the kernel schema");
  const schema::AttrSchema *a = k->findAttr(key);
  if (!a)
    return kernelError(
        c, absl::StrFormat("reads attribute '%s', which the kernel schema "
                           "(GalaxyOps.td) does not declare for it",
                           key));
  if (a->type != want)
    return kernelError(
        c, absl::StrFormat("reads attribute '%s' as %s; the kernel schema "
                           "declares %s",
                           key, schema::typeName(want),
                           schema::typeName(a->type)));
  return a;
}

static absl::Status missing(const KernelCall &c, const std::string &key,
                            std::string_view kind) {
  return kernelError(
      c, absl::StrFormat("needs %s attribute '%s' (no default)", kind, key));
}

static absl::Status wrongKind(const KernelCall &c, const std::string &key,
                              std::string_view kind) {
  return kernelError(c,
                     absl::StrFormat("attribute '%s' must be %s", key, kind));
}

absl::StatusOr<double> floatAttr(const KernelCall &c, const std::string &key) {
  GALAXY_CPU_ASSIGN_OR_RETURN(const schema::AttrSchema *s,
                              declared(c, key, schema::AttrType::kFloat));
  const plan::Attr *a = findAttr(c, key);
  if (!a) {
    if (!s->required)
      return s->floatDefault;
    return missing(c, key, "float");
  }
  if (a->has_f())
    return a->f();
  if (a->has_i())
    return static_cast<double>(a->i()); // 1 written as an int is still 1.0
  return wrongKind(c, key, "a float (Attr.f)");
}

absl::StatusOr<int64_t> intAttr(const KernelCall &c, const std::string &key) {
  GALAXY_CPU_ASSIGN_OR_RETURN(const schema::AttrSchema *s,
                              declared(c, key, schema::AttrType::kInt));
  const plan::Attr *a = findAttr(c, key);
  if (!a) {
    if (!s->required)
      return s->intDefault;
    return missing(c, key, "int");
  }
  if (a->has_i())
    return a->i();
  return wrongKind(c, key, "an int (Attr.i)");
}

absl::StatusOr<std::string> stringAttr(const KernelCall &c,
                                       const std::string &key) {
  GALAXY_CPU_ASSIGN_OR_RETURN(const schema::AttrSchema *s,
                              declared(c, key, schema::AttrType::kString));
  const plan::Attr *a = findAttr(c, key);
  if (!a) {
    if (!s->required)
      return std::string(s->stringDefault);
    return missing(c, key, "string");
  }
  if (a->has_s())
    return a->s();
  return wrongKind(c, key, "a string (Attr.s)");
}

absl::StatusOr<std::vector<int64_t>> intsAttr(const KernelCall &c,
                                              const std::string &key) {
  GALAXY_CPU_ASSIGN_OR_RETURN(const schema::AttrSchema *s,
                              declared(c, key, schema::AttrType::kInts));
  const plan::Attr *a = findAttr(c, key);
  if (!a) {
    if (!s->required)
      return std::vector<int64_t>{};
    return missing(c, key, "int list");
  }
  if (a->has_ints())
    return std::vector<int64_t>(a->ints().v().begin(), a->ints().v().end());
  return wrongKind(c, key, "an int list (Attr.ints)");
}

} // namespace galaxy::rt::cpu
