// Plan loading as galaxy-run does it (tools/galaxy-run/common.cpp readPlan and
// loadInputs, runtime/exec/executor.cpp's checks before allocating): the
// protobuf parse, the format version and matmul dtype, checkLoadedPlanSizes,
// checkPlanKernels and datasetOptionsFor. A plan file is input like any
// other (damaged, hand-edited, hostile). Property: no crash or UB.
#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "runtime/backend.h"
#include "runtime/exec/plan_kernels.h"
#include "runtime/io/plan_data.h"
#include "runtime/plan/plan.pb.h"
#include "runtime/plan/plan_sizes.h"
#include "runtime/plan/version.h"

using namespace galaxy;

namespace {
// A backend that has every kernel: checkPlanKernels then only consults the
// schema. Nothing runs.
class AllKernels : public rt::Backend {
public:
  std::string name() const override { return "fuzz"; }
  std::string gemmDescription() const override { return ""; }
  bool implements(std::string_view) const override { return true; }
  absl::Status run(const plan::Instr &, const std::vector<rt::Tensor> &,
                   const std::vector<rt::Tensor> &,
                   const rt::KernelContext &) override {
    return absl::UnimplementedError("fuzz");
  }
};
} // namespace

// protobuf logs every string field that is not UTF-8; mutated plans are full
// of them, and the log would drown libFuzzer's.
extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  plan::Plan p;
  if (!p.ParseFromArray(data, static_cast<int>(size)))
    return 0;
  // galaxy-run stops at another version; test the checks behind it anyway
  // (the seeds carry the right one, mutations often do not).
  p.set_format_version(plan::kPlanFormatVersion);
  // galaxy-run's order: loadInputs (sizes, then the data options), then
  // Executor::create (matmul dtype, sizes again, kernels).
  const std::string origin = "plan fuzz.plan.pb";
  if (!plan::checkLoadedPlanSizes(p, origin).ok())
    return 0;
  if (!io::datasetOptionsFor(p).ok())
    return 0;
  if (!plan::MatmulDType_IsValid(p.matmul_dtype()))
    return 0;
  AllKernels backend;
  (void)rt::checkPlanKernels(p, backend, origin);
  return 0;
}
