#include "runtime/exec/staged_communicator.h"

#include <numeric>

#include "absl/strings/str_cat.h"

namespace galaxy::comm {
namespace {

// Device scratch released on scope exit.
class DeviceBuf {
public:
  DeviceBuf(rt::DeviceMemory &mem) : mem_(mem) {}
  ~DeviceBuf() {
    if (p_)
      mem_.release(p_);
  }
  absl::StatusOr<char *> get(size_t bytes) {
    absl::StatusOr<void *> p = mem_.allocate(std::max<size_t>(bytes, 4));
    if (!p.ok())
      return absl::ResourceExhaustedError(absl::StrCat(
          "host-staged collective: cannot allocate ", bytes, " bytes on GPU ",
          mem_.device(), ": ", p.status().message()));
    p_ = *p;
    return static_cast<char *>(p_);
  }

private:
  rt::DeviceMemory &mem_;
  void *p_ = nullptr;
};

size_t sum(const std::vector<size_t> &v) {
  return std::accumulate(v.begin(), v.end(), size_t{0});
}

class HostStaged final : public Communicator {
public:
  HostStaged(Communicator &d, rt::DeviceMemory &mem) : d_(d), mem_(mem) {}
  int rank() const override { return d_.rank(); }
  int size() const override { return d_.size(); }
  int worldRank(int r) const override { return d_.worldRank(r); }

  absl::Status reduceScatterV(const float *in, float *out,
                              const std::vector<size_t> &counts) override {
    const size_t n = sum(counts), mine = counts[rank()];
    DeviceBuf bi(mem_), bo(mem_);
    auto di = bi.get(4 * n);
    auto dout = bo.get(4 * mine);
    if (!di.ok() || !dout.ok())
      return di.ok() ? dout.status() : di.status();
    if (auto s = mem_.copyToDevice(*di, in, 4 * n); !s.ok())
      return s;
    if (auto s = d_.reduceScatterV(reinterpret_cast<float *>(*di),
                                   reinterpret_cast<float *>(*dout), counts);
        !s.ok())
      return s;
    return mem_.copyToHost(out, *dout, 4 * mine);
  }

  absl::Status barrier() override { return d_.barrier(); }

  absl::StatusOr<std::unique_ptr<Communicator>>
  split(const std::vector<int> &) override {
    return absl::UnimplementedError(
        "a host-staged communicator cannot be split; split the device one");
  }

protected:
  absl::Status allReduceSumT(void *buf, size_t n, ElemType t) override {
    DeviceBuf b(mem_);
    auto d = b.get(4 * n);
    if (!d.ok())
      return d.status();
    if (auto s = mem_.copyToDevice(*d, buf, 4 * n); !s.ok())
      return s;
    absl::Status s = t == ElemType::kI32
                         ? d_.allReduceSum(reinterpret_cast<int32_t *>(*d), n)
                         : d_.allReduceSum(reinterpret_cast<float *>(*d), n);
    if (!s.ok())
      return s;
    return mem_.copyToHost(buf, *d, 4 * n);
  }

  absl::Status allGatherVT(const void *in, size_t inCount, void *out,
                           const std::vector<size_t> &counts,
                           ElemType) override {
    const size_t n = sum(counts);
    DeviceBuf bi(mem_), bo(mem_);
    auto di = bi.get(4 * inCount);
    auto dout = bo.get(4 * n);
    if (!di.ok() || !dout.ok())
      return di.ok() ? dout.status() : di.status();
    if (auto s = mem_.copyToDevice(*di, in, 4 * inCount); !s.ok())
      return s;
    // Bit transport: the i32 overload moves either type unchanged.
    if (auto s = d_.allGatherV(reinterpret_cast<const int32_t *>(*di), inCount,
                               reinterpret_cast<int32_t *>(*dout), counts);
        !s.ok())
      return s;
    return mem_.copyToHost(out, *dout, 4 * n);
  }

  absl::Status allToAllVT(const void *in, const std::vector<size_t> &sendCounts,
                          void *out, const std::vector<size_t> &recvCounts,
                          ElemType) override {
    const size_t ns = sum(sendCounts), nr = sum(recvCounts);
    DeviceBuf bi(mem_), bo(mem_);
    auto di = bi.get(4 * ns);
    auto dout = bo.get(4 * nr);
    if (!di.ok() || !dout.ok())
      return di.ok() ? dout.status() : di.status();
    if (auto s = mem_.copyToDevice(*di, in, 4 * ns); !s.ok())
      return s;
    if (auto s = d_.allToAllV(reinterpret_cast<const float *>(*di), sendCounts,
                              reinterpret_cast<float *>(*dout), recvCounts);
        !s.ok())
      return s;
    return mem_.copyToHost(out, *dout, 4 * nr);
  }

  absl::Status broadcastT(void *buf, size_t n, int root, ElemType) override {
    DeviceBuf b(mem_);
    auto d = b.get(4 * n);
    if (!d.ok())
      return d.status();
    if (auto s = mem_.copyToDevice(*d, buf, 4 * n); !s.ok())
      return s;
    if (auto s = d_.broadcast(reinterpret_cast<int32_t *>(*d), n, root);
        !s.ok())
      return s;
    return mem_.copyToHost(buf, *d, 4 * n);
  }

  absl::Status sendRecvT(const void *sendBuf, size_t sendN, int dst,
                         void *recvBuf, size_t recvN, int src, uint32_t tag,
                         ElemType) override {
    DeviceBuf bs(mem_), br(mem_);
    auto ds = bs.get(4 * sendN);
    auto dr = br.get(4 * recvN);
    if (!ds.ok() || !dr.ok())
      return ds.ok() ? dr.status() : ds.status();
    if (dst >= 0)
      if (auto s = mem_.copyToDevice(*ds, sendBuf, 4 * sendN); !s.ok())
        return s;
    absl::Status s;
    if (dst >= 0 && src >= 0)
      s = d_.sendRecv(reinterpret_cast<const float *>(*ds), sendN, dst,
                      reinterpret_cast<float *>(*dr), recvN, src, tag);
    else if (dst >= 0)
      s = d_.send(reinterpret_cast<const float *>(*ds), sendN, dst, tag);
    else if (src >= 0)
      s = d_.recv(reinterpret_cast<float *>(*dr), recvN, src, tag);
    if (!s.ok() || src < 0)
      return s;
    return mem_.copyToHost(recvBuf, *dr, 4 * recvN);
  }

private:
  Communicator &d_;
  rt::DeviceMemory &mem_;
};

} // namespace

std::unique_ptr<Communicator>
makeHostStagedCommunicator(Communicator &device, rt::DeviceMemory &mem) {
  return std::make_unique<HostStaged>(device, mem);
}

} // namespace galaxy::comm
