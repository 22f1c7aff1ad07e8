// The kernel conformance suite (IREE's HAL CTS is the model): every
// backend-run kernel of the kernel schema (runtime/plan/kernel_schema.h) on one
// backend against a naive double-precision reference written here, and
// gradient kernels against finite differences of their forward reference.
// suite.cc holds the parameterized test, cases.cc the case per kernel; each
// backend's executable supplies a Harness and instantiates the suite.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tests/kernels/kernel_test_util.h"
#include "gtest/gtest.h"

namespace galaxy::rt::conformance {

using testing::Buf;
using testing::Op;

// One backend under test.
struct Harness {
  std::string name;
  // Null when the backend can run here; else why not (the tests skip).
  std::function<std::optional<std::string>()> unavailable;
  std::function<Backend &()> backend;
  // Runs op on host buffers (copied to and from the device where the backend
  // has one); inputs come back too, for in-place kernels.
  std::function<absl::Status(const Op &, std::vector<Buf> &in,
                             std::vector<Buf> &out, const KernelContext &)>
      run;
};

// Defined by each backend's test executable.
const Harness &harness();

// What a case may use: random data and the backend.
struct CaseContext {
  std::mt19937 rng{20240611};
  Buf rnd(std::vector<int64_t> shape, float lo = -1.f, float hi = 1.f) {
    return Buf::random(std::move(shape), rng, lo, hi);
  }
  Buf ids(std::vector<int64_t> shape, int32_t lo, int32_t hi);
  // Runs op (failing the test on error; returns false then).
  bool exec(const Op &op, std::vector<Buf> &in, std::vector<Buf> &out,
            const KernelContext &ctx = {});
};

using CaseFn = std::function<void(CaseContext &)>;

// Kernel name -> its case (cases.cc).
const std::map<std::string, CaseFn> &cases();

// The kernels every Backend must run (Runner::kBackend), sorted.
std::vector<std::string> backendKernels();

// The suite, parameterized by kernel name; each backend's executable
// instantiates it over backendKernels() under the backend's name.
class Conformance : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override;

public:
  static std::string name(const ::testing::TestParamInfo<std::string> &i);
};

} // namespace galaxy::rt::conformance
