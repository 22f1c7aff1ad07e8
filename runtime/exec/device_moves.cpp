#include "runtime/exec/device_moves.h"

#include "absl/strings/str_cat.h"

namespace galaxy::rt {

namespace {
constexpr size_t kElem = 4; // f32 and i32

std::vector<size_t> counts(const DataMove &m) {
  std::vector<size_t> c;
  for (int64_t s : m.sizes)
    c.push_back(static_cast<size_t>(m.pre * s * m.post));
  return c;
}
} // namespace

DeviceMover::~DeviceMover() {
  if (scratch_)
    mem_.release(scratch_);
}

absl::StatusOr<char *> DeviceMover::scratch(size_t bytes) {
  if (bytes > scratchBytes_) {
    if (scratch_)
      mem_.release(scratch_);
    scratch_ = nullptr;
    scratchBytes_ = 0;
    absl::StatusOr<void *> p = mem_.allocate(bytes);
    if (!p.ok())
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot allocate ", bytes, " bytes of data-movement scratch on GPU ",
          mem_.device(), ": ", p.status().message()));
    scratch_ = *p;
    scratchBytes_ = bytes;
  }
  return static_cast<char *>(scratch_);
}

// A communicator that takes host buffers (Gloo): copy x down, run the host
// move, copy y up. Aliasing of x and y (in-place all_reduce) is kept.
absl::Status DeviceMover::viaHost(const DataMove &m, const Tensor &x,
                                  const Tensor &y, int rank) {
  hostX_.resize(x.numel() * kElem);
  if (absl::Status s = mem_.copyToHost(hostX_.data(), x.data, hostX_.size());
      !s.ok())
    return s;
  Tensor hx = x, hy = y;
  hx.data = hostX_.data();
  if (x.data == y.data) {
    hy.data = hostX_.data();
  } else {
    hostY_.resize(y.numel() * kElem);
    hy.data = hostY_.data();
  }
  if (absl::Status s = runDataMove(m, hx, hy, comm_, rank, hostScratch_);
      !s.ok())
    return s;
  return mem_.copyToDevice(y.data, hy.data, y.numel() * kElem);
}

absl::Status DeviceMover::run(const DataMove &m, const Tensor &x,
                              const Tensor &y, int rank) {
  const int world = comm_ ? comm_->size() : 1;
  char *yb = static_cast<char *>(y.data);
  const char *xb = static_cast<const char *>(x.data);
  const bool collective = m.kind == MoveKind::kAllReduce ||
                          m.kind == MoveKind::kAllGather ||
                          m.kind == MoveKind::kReduceScatter;
  if (collective && world > 1 && !commOnDevice_)
    return viaHost(m, x, y, rank);
  switch (m.kind) {
  case MoveKind::kAllReduce: {
    if (x.data != y.data)
      if (absl::Status s = mem_.copyOnDevice(y.data, x.data, m.numel * kElem);
          !s.ok())
        return s;
    if (world == 1 || m.numel == 0)
      return absl::OkStatus();
    return m.dtype == plan::I32 ? comm_->allReduceSum(y.i32(), m.numel)
                                : comm_->allReduceSum(y.f32(), m.numel);
  }

  case MoveKind::kSlice: {
    const size_t n = m.sizes[rank] * m.post * kElem,
                 stride = (m.offsets.back() + m.sizes.back()) * m.post * kElem;
    if (n == 0 || m.pre == 0)
      return absl::OkStatus();
    return mem_.copy2D(yb, n, xb + m.offsets[rank] * m.post * kElem, stride, n,
                       m.pre);
  }

  case MoveKind::kPad: { // this rank's shard in a zero tensor
    const size_t n = m.sizes[rank] * m.post * kElem,
                 stride = (m.offsets.back() + m.sizes.back()) * m.post * kElem;
    if (absl::Status s = mem_.fillZero(y.data, y.numel() * kElem); !s.ok())
      return s;
    if (n == 0 || m.pre == 0)
      return absl::OkStatus();
    return mem_.copy2D(yb + m.offsets[rank] * m.post * kElem, stride, xb, n, n,
                       m.pre);
  }

  case MoveKind::kAllGather: {
    if (world == 1)
      return mem_.copyOnDevice(y.data, x.data, y.numel() * kElem);
    const std::vector<size_t> c = counts(m);
    char *dst = yb;
    if (m.pre > 1) {
      absl::StatusOr<char *> s = scratch(y.numel() * kElem);
      if (!s.ok())
        return s.status();
      dst = *s;
    }
    absl::Status s =
        m.dtype == plan::I32
            ? comm_->allGatherV(x.i32(), c[rank],
                                reinterpret_cast<int32_t *>(dst), c)
            : comm_->allGatherV(x.f32(), c[rank],
                                reinterpret_cast<float *>(dst), c);
    if (!s.ok() || m.pre <= 1)
      return s;
    const size_t rowBytes =
        (m.offsets.back() + m.sizes.back()) * m.post * kElem;
    size_t chunk = 0;
    for (int r = 0; r < world; ++r) {
      const size_t run = m.sizes[r] * m.post * kElem;
      if (run > 0)
        if (absl::Status s2 =
                mem_.copy2D(yb + m.offsets[r] * m.post * kElem, rowBytes,
                            dst + chunk * kElem, run, run, m.pre);
            !s2.ok())
          return s2;
      chunk += c[r];
    }
    return absl::OkStatus();
  }

  case MoveKind::kReduceScatter: {
    if (world == 1)
      return mem_.copyOnDevice(y.data, x.data, y.numel() * kElem);
    const std::vector<size_t> c = counts(m);
    const float *src = x.f32();
    if (m.pre > 1) { // pack each rank's shard contiguously, in rank order
      absl::StatusOr<char *> s = scratch(x.numel() * kElem);
      if (!s.ok())
        return s.status();
      const size_t rowBytes =
          (m.offsets.back() + m.sizes.back()) * m.post * kElem;
      size_t chunk = 0;
      for (int r = 0; r < world; ++r) {
        const size_t run = m.sizes[r] * m.post * kElem;
        if (run > 0)
          if (absl::Status s2 = mem_.copy2D(*s + chunk * kElem, run,
                                            xb + m.offsets[r] * m.post * kElem,
                                            rowBytes, run, m.pre);
              !s2.ok())
            return s2;
        chunk += c[r];
      }
      src = reinterpret_cast<const float *>(*s);
    }
    return comm_->reduceScatterV(src, y.f32(), c);
  }
  }
  return absl::InternalError("unknown data move");
}

} // namespace galaxy::rt
