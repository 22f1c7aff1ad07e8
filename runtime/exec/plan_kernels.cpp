#include "runtime/exec/plan_kernels.h"

#include "absl/strings/str_format.h"
#include "runtime/plan/kernel_schema.h"

namespace galaxy::rt {

absl::Status checkPlanKernels(const plan::Plan &plan, const Backend &backend,
                              std::string_view origin) {
  for (const plan::Program &prog : plan.programs())
    for (int i = 0; i < prog.instrs_size(); ++i) {
      const plan::Instr &instr = prog.instrs(i);
      const schema::KernelSchema *k = schema::findKernel(instr.kernel());
      if (!k)
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s: plan names kernel '%s' that this galaxy-run does not know "
            "(%s instruction %d, block '%s'); recompile with the matching "
            "galaxyc",
            origin, instr.kernel(), prog.name(), i, instr.block()));
      if (k->runner == schema::Runner::kBackend &&
          !backend.implements(instr.kernel()))
        return absl::UnimplementedError(absl::StrFormat(
            "%s: kernel '%s' (%s instruction %d, block '%s') is not "
            "implemented by the %s backend; run the plan on a backend that "
            "has it",
            origin, instr.kernel(), prog.name(), i, instr.block(),
            backend.name()));
    }
  return absl::OkStatus();
}

} // namespace galaxy::rt
