// The conformance suite on the CPU backend.
#include "tests/conformance/conformance.h"

namespace galaxy::rt::conformance {

const Harness &harness() {
  static const Harness h{"cpu", [] { return std::optional<std::string>(); },
                         []() -> Backend & { return testing::cpuBackend(); },
                         [](const Op &op, std::vector<Buf> &in,
                            std::vector<Buf> &out, const KernelContext &ctx) {
                           std::vector<Buf *> pi, po;
                           for (Buf &b : in)
                             pi.push_back(&b);
                           for (Buf &b : out)
                             po.push_back(&b);
                           return testing::run(op, pi, po, ctx,
                                               &testing::cpuBackend());
                         }};
  return h;
}

INSTANTIATE_TEST_SUITE_P(Cpu, Conformance,
                         ::testing::ValuesIn(backendKernels()),
                         Conformance::name);

} // namespace galaxy::rt::conformance
