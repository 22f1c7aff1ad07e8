// Backend-independent checks of the case registry (in the CPU executable
// only, so ctest sees each once).
#include <algorithm>

#include "tests/conformance/conformance.h"
#include "gtest/gtest.h"

namespace galaxy::rt::conformance {
namespace {

// Every case names a backend kernel of the schema: a case left behind by a
// renamed or removed kernel fails.
TEST(ConformanceSchema, EveryCaseNamesABackendKernel) {
  std::vector<std::string> kernels = backendKernels();
  for (const auto &[name, fn] : cases())
    EXPECT_TRUE(std::find(kernels.begin(), kernels.end(), name) !=
                kernels.end())
        << "case for '" << name
        << "', which is no backend kernel of the schema";
  EXPECT_FALSE(kernels.empty());
}

} // namespace
} // namespace galaxy::rt::conformance
