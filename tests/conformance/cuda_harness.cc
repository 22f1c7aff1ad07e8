// The conformance suite on the CUDA backend (ctest label gpu): buffers are
// copied to the GPU and back around each kernel. Without a GPU every test
// skips, saying why.
#include <cmath>

#include "tests/conformance/conformance.h"
#include "tests/cuda/gpu_test_util.h"

namespace galaxy::rt::conformance {
namespace {

size_t bytesOf(const Buf &b) { return b.numel() * 4; }
void *hostData(Buf &b) {
  return b.dtype == plan::F32 ? static_cast<void *>(b.f.data())
                              : static_cast<void *>(b.i.data());
}

absl::Status runOnGpu(const Op &op, std::vector<Buf> &in, std::vector<Buf> &out,
                      const KernelContext &ctx) {
  DeviceMemory &mem = testing::gpuMemory();
  std::vector<void *> owned;
  absl::Status st;
  auto upload = [&](std::vector<Buf> &bufs) {
    std::vector<Tensor> ts;
    for (Buf &b : bufs) {
      absl::StatusOr<void *> p = mem.allocate(bytesOf(b));
      if (!p.ok()) {
        st.Update(p.status());
        return ts;
      }
      owned.push_back(*p);
      st.Update(mem.copyToDevice(*p, hostData(b), bytesOf(b)));
      Tensor t = b.t();
      t.data = *p;
      ts.push_back(t);
    }
    return ts;
  };
  std::vector<Tensor> ti = upload(in), to = upload(out);
  if (st.ok())
    st.Update(testing::gpuBackend().run(op.instr(), ti, to, ctx));
  auto download = [&](std::vector<Buf> &bufs, std::vector<Tensor> &ts) {
    for (size_t k = 0; k < bufs.size() && k < ts.size(); ++k)
      st.Update(
          mem.copyToHost(hostData(bufs[k]), ts[k].data, bytesOf(bufs[k])));
  };
  if (st.ok()) {
    download(in, ti);
    download(out, to);
  }
  for (void *p : owned)
    mem.release(p);
  return st;
}

} // namespace

const Harness &harness() {
  static const Harness h{"cuda", [] { return testing::noGpuReason(); },
                         []() -> Backend & { return testing::gpuBackend(); },
                         runOnGpu};
  return h;
}

INSTANTIATE_TEST_SUITE_P(Cuda, Conformance,
                         ::testing::ValuesIn(backendKernels()),
                         Conformance::name);

} // namespace galaxy::rt::conformance
