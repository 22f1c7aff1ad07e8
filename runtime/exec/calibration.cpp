#include "runtime/exec/calibration.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace galaxy::rt {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Floats on the device (DeviceMemory) or in host memory, released on scope
// exit; host buffers hold `fill`, device ones zeros (the GEMM's speed does not
// depend on the values).
class Floats {
public:
  Floats(DeviceMemory *device) : device_(device) {}
  Floats(const Floats &) = delete;
  Floats &operator=(const Floats &) = delete;
  ~Floats() {
    if (device_ && dev_)
      device_->release(dev_);
  }
  absl::Status allocate(int64_t n, float fill = 0.01f) {
    n_ = std::max<int64_t>(n, 1);
    if (!device_) {
      host_.assign(size_t(n_), fill);
      return absl::OkStatus();
    }
    absl::StatusOr<void *> p = device_->allocate(size_t(n_) * sizeof(float));
    if (!p.ok())
      return p.status();
    dev_ = *p;
    return absl::OkStatus();
  }
  float *data() { return device_ ? static_cast<float *>(dev_) : host_.data(); }
  // Host values in and out (a no-op copy on the host).
  absl::Status upload(const std::vector<float> &v) {
    if (!device_) {
      std::copy(v.begin(), v.end(), host_.begin());
      return absl::OkStatus();
    }
    return device_->copyToDevice(dev_, v.data(), v.size() * sizeof(float));
  }
  absl::Status download(std::vector<float> &v) {
    if (!device_) {
      std::copy(host_.begin(), host_.begin() + v.size(), v.begin());
      return absl::OkStatus();
    }
    return device_->copyToHost(v.data(), dev_, v.size() * sizeof(float));
  }

private:
  DeviceMemory *device_;
  std::vector<float> host_;
  void *dev_ = nullptr;
  int64_t n_ = 0;
};

Tensor tensorOf(Floats &f, std::vector<int64_t> shape) {
  Tensor t;
  t.data = f.data();
  t.dtype = plan::F32;
  t.shape = std::move(shape);
  return t;
}

// Runs `once` repeatedly for options.windowS after options.together(); the
// seconds per call. On a device, waits for the queue every few calls (and at
// the end) so the time is the kernels', not the launches'.
absl::StatusOr<double> timeWindow(const std::function<absl::Status()> &once,
                                  DeviceMemory *device,
                                  const MeasureOptions &options) {
  if (absl::Status s = once(); !s.ok()) // warm-up: first-use choices, caches
    return s;
  if (device)
    if (absl::Status s = device->synchronize(); !s.ok())
      return s;
  if (options.together)
    if (absl::Status s = options.together(); !s.ok())
      return s;
  const Clock::time_point t0 = Clock::now();
  int64_t calls = 0;
  double elapsed = 0;
  while (elapsed < options.windowS || calls < 2) {
    if (absl::Status s = once(); !s.ok())
      return s;
    ++calls;
    if (device && calls % 16 == 0)
      if (absl::Status s = device->synchronize(); !s.ok())
        return s;
    elapsed = secondsSince(t0);
  }
  if (device) {
    if (absl::Status s = device->synchronize(); !s.ok())
      return s;
    elapsed = secondsSince(t0);
  }
  return elapsed / double(calls);
}

absl::Status fromJsonError(const std::string &origin, const std::string &key,
                           const std::string &why) {
  return absl::InvalidArgumentError(
      absl::StrCat(origin, ": \"", key, "\" ", why));
}

// The positive integer at the first of `keys` present, else `otherwise`.
absl::StatusOr<int64_t> positiveKey(const nlohmann::json &j,
                                    std::initializer_list<const char *> keys,
                                    int64_t otherwise,
                                    const std::string &origin) {
  for (const char *key : keys) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null())
      continue;
    if (!it->is_number_integer() || it->get<int64_t>() <= 0)
      return fromJsonError(
          origin, key,
          absl::StrCat("must be a positive integer, got ", it->dump()));
    return it->get<int64_t>();
  }
  return otherwise;
}

// The ring steps and per-link share of an all-reduce over `n` ranks (see
// NetworkFigures).
double ringSteps(int n) { return 2.0 * (n - 1); }
double ringShare(int n) { return 2.0 * (n - 1) / n; }

// measureCompute's weights rotate over copies of this many bytes in all (more
// than a CPU's last-level cache or a GPU's L2), at most this many copies.
constexpr int64_t kColdWeightBytes = int64_t{128} << 20;
constexpr int64_t kMaxWeightCopies = 64;

// Buffer sizes (floats) of the network probes, and repetitions of each
// (fewer for the big ones: their time is stable, and they cost the most).
struct Probe {
  size_t floats;
  int reps;
};
// 1 KiB .. 4 MiB; 256 KiB .. 1 MiB is where a BERT-base layer's all-reduces
// (batch x seq x hidden floats) fall. Twice the calls the fit would need on
// a quiet link: staggered arrivals on a shared core scatter each call by up
// to a scheduler tick, and the mean steadies with more of them.
constexpr Probe kProbes[] = {
    {256, 40}, {16 << 10, 20}, {64 << 10, 16}, {256 << 10, 16}, {1 << 20, 8}};

// The most a rank idles before a timed collective (measureNetwork): longer
// than a scheduler tick and a CPU quota's period (bench/hetero.sh: 2 ms),
// about half a second over the ~100 calls.
constexpr std::chrono::microseconds kIdleGap{4000};

// The partner of `rank` in round `round` of the circle method over `n`
// ranks (an odd n gets a bye: -1), so that every pair meets exactly once in
// rounds() rounds.
int rounds(int n) { return n % 2 ? n : n - 1; }
int partnerIn(int round, int rank, int n) {
  const int m = n % 2 ? n + 1 : n; // with a phantom rank m-1 when odd
  const int fixed = m - 1, ring = m - 1;
  int partner;
  if (rank == fixed)
    partner = round;
  else if (rank == round)
    partner = fixed;
  else
    partner = ((2 * round - rank) % ring + ring) % ring;
  return partner < n ? partner : -1;
}

double gbps(double bytesPerS) { return bytesPerS * 8 / 1e9; }

} // namespace

absl::StatusOr<CalibrationShapes>
calibrationShapesFromConfig(const std::string &json,
                            const std::string &origin) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return absl::InvalidArgumentError(
        absl::StrCat(origin, ": not a JSON object (a galaxyc config)"));
  CalibrationShapes s;
  if (auto it = j.find("model_type"); it != j.end() && it->is_string())
    s.model = it->get<std::string>();
  // Each model's defaults (configs/README.md): BERT-base, LLaMA-7B, BART-large.
  int64_t h = 768, inter = 3072, heads = 12;
  if (s.model == "llama")
    h = 4096, inter = 11008, heads = 32;
  else if (s.model == "bart")
    h = 1024, inter = 4096, heads = 16;
  absl::StatusOr<int64_t> hidden =
      positiveKey(j, {"hidden_size", "d_model"}, h, origin);
  if (!hidden.ok())
    return hidden.status();
  absl::StatusOr<int64_t> ffn =
      positiveKey(j, {"intermediate_size", "encoder_ffn_dim"}, inter, origin);
  if (!ffn.ok())
    return ffn.status();
  absl::StatusOr<int64_t> nHeads = positiveKey(
      j, {"num_attention_heads", "encoder_attention_heads"}, heads, origin);
  if (!nHeads.ok())
    return nHeads.status();
  absl::StatusOr<int64_t> kvHeads =
      positiveKey(j, {"num_key_value_heads"}, *nHeads, origin);
  if (!kvHeads.ok())
    return kvHeads.status();
  absl::StatusOr<int64_t> batch = positiveKey(j, {"batch_size"}, 4, origin);
  if (!batch.ok())
    return batch.status();
  absl::StatusOr<int64_t> seq = positiveKey(j, {"pad_size"}, 32, origin);
  if (!seq.ok())
    return seq.status();
  s.hidden = *hidden;
  s.intermediate = *ffn;
  s.kvHidden = *hidden * *kvHeads / *nHeads;
  if (s.kvHidden <= 0)
    s.kvHidden = *hidden;
  s.rows = *batch * *seq;
  if (auto it = j.find("dtype"); it != j.end() && it->is_string()) {
    const std::string d = it->get<std::string>();
    if (d == "bf16" || d == "bfloat16")
      s.matmul = plan::MATMUL_BF16;
  }
  if (auto it = j.find("inference"); it != j.end() && it->is_boolean())
    s.training = !it->get<bool>();
  return s;
}

std::vector<int64_t> calibrationRows(int64_t rows) {
  std::vector<int64_t> out;
  for (int64_t d : {8, 4, 2})
    if (rows % d == 0 && rows / d >= 1)
      out.push_back(rows / d);
  out.push_back(rows);
  return out;
}

std::vector<GemmCase> layerGemms(const CalibrationShapes &s) {
  // A linear K -> N (`count` of them a layer).
  struct Linear {
    int64_t k, n;
    int count;
  };
  std::vector<Linear> linears;
  if (s.model == "llama")
    linears = {{s.hidden, s.hidden, 2},       // q, o
               {s.hidden, s.kvHidden, 2},     // k, v
               {s.hidden, s.intermediate, 2}, // gate, up
               {s.intermediate, s.hidden, 1}};
  else // BERT, and BART's encoder layer
    linears = {{s.hidden, s.hidden, 4},
               {s.hidden, s.intermediate, 1},
               {s.intermediate, s.hidden, 1}};
  std::vector<GemmCase> cases;
  const int64_t m = s.rows;
  auto shape = [](int64_t a, int64_t b, int64_t c) {
    return absl::StrFormat("%dx%dx%d", a, b, c);
  };
  for (const Linear &l : linears) {
    cases.push_back({absl::StrCat("fwd ", shape(m, l.k, l.n)), "linear", 1, m,
                     l.n, l.k, l.count});
    if (!s.training)
      continue;
    cases.push_back({absl::StrCat("dx  ", shape(m, l.n, l.k)), "linear", 0, m,
                     l.k, l.n, l.count});
    cases.push_back({absl::StrCat("dW  ", shape(l.n, m, l.k)),
                     "linear_weight_grad", 0, l.n, l.k, m, l.count});
  }
  return cases;
}

absl::StatusOr<ComputeFigures> measureCompute(Backend &backend,
                                              DeviceMemory *device,
                                              const CalibrationShapes &shapes,
                                              const MeasureOptions &options) {
  KernelContext ctx;
  ctx.seed = 1;
  ctx.step = 1;
  ctx.training = true;
  ctx.matmulDType = shapes.matmul;
  ComputeFigures out;
  // A layer's linears at `at` rows: their GFLOP/s (per case into `cases`).
  auto linears = [&](const CalibrationShapes &at,
                     std::vector<double> *cases) -> absl::StatusOr<double> {
    double flops = 0, seconds = 0;
    for (const GemmCase &c : layerGemms(at)) {
      plan::Instr instr;
      instr.set_kernel(c.kernel);
      Floats a(device), b(device), y(device);
      std::vector<Tensor> in, res;
      // The weight-sized operand (linear's w, linear_weight_grad's dw) in
      // copies that together outgrow the caches, one per call in turn: in a
      // step each weight comes from memory, and a GEMM of few rows (a
      // microbatch) reuses it too little to hide that.
      std::vector<std::unique_ptr<Floats>> weights;
      auto allocateWeights = [&](int64_t n) -> absl::Status {
        const int64_t copies = std::clamp<int64_t>(
            kColdWeightBytes / std::max<int64_t>(n * int64_t(sizeof(float)), 1),
            1, kMaxWeightCopies);
        for (int64_t i = 0; i < copies; ++i) {
          weights.push_back(std::make_unique<Floats>(device));
          if (absl::Status s = weights.back()->allocate(n); !s.ok())
            return s;
        }
        return absl::OkStatus();
      };
      if (c.kernel == "linear") {
        // x[m,k]; w [n,k] (transpose_w 1) or [k,n]; y[m,n].
        (*instr.mutable_attrs())["transpose_w"].set_i(c.transposeW);
        for (auto [f, n] : {std::pair{&a, c.m * c.k}, std::pair{&y, c.m * c.n}})
          if (absl::Status s = f->allocate(n); !s.ok())
            return s;
        if (absl::Status s = allocateWeights(c.k * c.n); !s.ok())
          return s;
        in = {tensorOf(a, {c.m, c.k}),
              tensorOf(*weights[0], c.transposeW
                                        ? std::vector<int64_t>{c.n, c.k}
                                        : std::vector<int64_t>{c.k, c.n})};
        in[1].param = true;
        res = {tensorOf(y, {c.m, c.n})};
      } else {
        // dw[n_out, k_in] = dyᵀ·x over `k` rows: dy[rows, m], x[rows, n].
        (*instr.mutable_attrs())["alpha"].set_f(1.0);
        (*instr.mutable_attrs())["beta"].set_f(0.0);
        for (auto [f, n] : {std::pair{&a, c.k * c.m}, std::pair{&b, c.k * c.n}})
          if (absl::Status s = f->allocate(n); !s.ok())
            return s;
        if (absl::Status s = allocateWeights(c.m * c.n); !s.ok())
          return s;
        in = {tensorOf(a, {c.k, c.m}), tensorOf(b, {c.k, c.n})};
        res = {tensorOf(*weights[0], {c.m, c.n})};
      }
      Tensor &weight = c.kernel == "linear" ? in[1] : res[0];
      size_t turn = 0;
      absl::StatusOr<double> t = timeWindow(
          [&] {
            weight.data = weights[turn++ % weights.size()]->data();
            return backend.run(instr, in, res, ctx);
          },
          device, options);
      if (!t.ok())
        return absl::Status(
            t.status().code(),
            absl::StrCat("GEMM ", c.label, ": ", t.status().message()));
      const double g = c.flops() / *t * 1e-9;
      if (cases)
        cases->push_back(g);
      flops += c.count * c.flops();
      seconds += c.count * *t;
      if (options.progress && cases)
        options.progress(absl::StrFormat("GEMM %-20s x%d %8.1f GFLOP/s",
                                         c.label, c.count, g));
    }
    return flops / seconds * 1e-9;
  };
  absl::StatusOr<double> full = linears(shapes, &out.caseGflops);
  if (!full.ok())
    return full.status();
  out.gflops = *full;
  for (int64_t rows : calibrationRows(shapes.rows)) {
    if (rows == shapes.rows) {
      out.gflopsByRows.push_back({rows, out.gflops});
      continue;
    }
    CalibrationShapes at = shapes;
    at.rows = rows;
    absl::StatusOr<double> g = linears(at, nullptr);
    if (!g.ok())
      return g.status();
    out.gflopsByRows.push_back({rows, *g});
    if (options.progress)
      options.progress(absl::StrFormat(
          "a layer's linears at %d rows %.1f GFLOP/s", rows, *g));
  }

  const int64_t n = shapes.rows * shapes.intermediate;
  Floats a(device), b(device), y(device);
  for (Floats *f : {&a, &b, &y})
    if (absl::Status s = f->allocate(n); !s.ok())
      return s;
  plan::Instr add;
  add.set_kernel("add");
  std::vector<Tensor> in = {tensorOf(a, {shapes.rows, shapes.intermediate}),
                            tensorOf(b, {shapes.rows, shapes.intermediate})};
  std::vector<Tensor> res = {tensorOf(y, {shapes.rows, shapes.intermediate})};
  absl::StatusOr<double> t = timeWindow(
      [&] { return backend.run(add, in, res, ctx); }, device, options);
  if (!t.ok())
    return absl::Status(t.status().code(), absl::StrCat("elementwise add: ",
                                                        t.status().message()));
  out.elementwiseGbps = 3.0 * double(n) * sizeof(float) / *t * 1e-9;
  if (options.progress)
    options.progress(absl::StrFormat(
        "add  %-20s    %8.1f GB/s",
        absl::StrFormat("%dx%d", shapes.rows, shapes.intermediate),
        out.elementwiseGbps));
  return out;
}

absl::StatusOr<std::vector<float>>
gatherFloats(comm::Communicator &comm, DeviceMemory *device,
             const std::vector<float> &mine) {
  const size_t n = mine.size(), world = size_t(comm.size());
  Floats in(device), out(device);
  if (absl::Status s = in.allocate(int64_t(n)); !s.ok())
    return s;
  if (absl::Status s = out.allocate(int64_t(n * world)); !s.ok())
    return s;
  if (absl::Status s = in.upload(mine); !s.ok())
    return s;
  if (absl::Status s = comm.allGatherV(in.data(), n, out.data(),
                                       std::vector<size_t>(world, n));
      !s.ok())
    return s;
  std::vector<float> all(n * world);
  if (absl::Status s = out.download(all); !s.ok())
    return s;
  return all;
}

LinearFit
fitLatencyBandwidth(const std::vector<std::pair<double, double>> &pts) {
  LinearFit f;
  if (pts.empty())
    return f;
  // Weights 1/t²: each point's relative error counts alike, so the small
  // sizes set the latency and one stalled big transfer cannot swing it.
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (auto [x, y] : pts) {
    const double w = y > 0 ? 1.0 / (y * y) : 0;
    sw += w, sx += w * x, sy += w * y, sxx += w * x * x, sxy += w * x * y;
  }
  const double det = sw * sxx - sx * sx;
  double slope = det > 0 ? (sw * sxy - sx * sy) / det : 0;
  double icpt = det > 0 ? (sy - slope * sx) / sw : 0;
  if (icpt < 0 && sxx > 0) { // through the origin instead
    icpt = 0;
    slope = sxy / sxx;
  }
  if (!(slope > 0)) { // noise swamped the bytes: the largest point alone
    auto big = *std::max_element(pts.begin(), pts.end());
    slope = big.second > 0 && big.first > 0 ? big.second / big.first : 1e-9;
  }
  f.latencyS = std::max(icpt, 0.0);
  f.bytesPerS = 1.0 / slope;
  return f;
}

double costFromLastArrival(const std::vector<std::vector<double>> &byRank) {
  if (byRank.empty() || byRank[0].empty())
    return 0;
  std::vector<double> calls;
  for (size_t c = 0; c < byRank[0].size(); ++c) {
    double last = std::numeric_limits<double>::max();
    for (const std::vector<double> &times : byRank)
      last = std::min(last, times[c]);
    calls.push_back(last);
  }
  std::sort(calls.begin(), calls.end());
  const size_t cut = calls.size() / 8;
  double sum = 0;
  for (size_t c = cut; c < calls.size() - cut; ++c)
    sum += calls[c];
  return sum / double(calls.size() - 2 * cut);
}

absl::StatusOr<NetworkFigures> measureNetwork(comm::Communicator &comm,
                                              DeviceMemory *device,
                                              const MeasureOptions &options) {
  const int world = comm.size(), rank = comm.rank();
  const size_t maxFloats = kProbes[std::size(kProbes) - 1].floats;
  Floats buf(device);
  if (absl::Status s = buf.allocate(int64_t(maxFloats), 0.f); !s.ok())
    return s;
  // Every call of each probe over `group`, timed on this rank from its own
  // arrival (null group: a bye, nothing timed). What a training step pays
  // for a collective beyond its ranks' load imbalance (which the planner
  // counts as idle) is the time from its LAST rank's arrival: the ranks that
  // came first wait in it, idle. So the ranks arrive staggered, as in a step
  // (after a barrier each idles its own 0..4 ms, a different order on every
  // call), and a call's cost is the shortest of its ranks' times (the last
  // to arrive: its time holds no waiting for the others). Calls started
  // together right after a barrier instead measure how fast a saturated or
  // just-preempted rank turns round, not what a step meets: a rank sharing
  // its core with a busy process (bench/hetero.sh SLOW=busy) then answers
  // every message a scheduler tick (4 ms) late, though in training, where it
  // waits in the collective, it answers within about 1 ms.
  auto allReduces = [&](comm::Communicator *group,
                        std::vector<float>::iterator out) -> absl::Status {
    for (const Probe &p : kProbes)
      for (int r = 0; r <= p.reps; ++r) { // the first call warms up
        if (!group) {
          if (r > 0)
            *out++ = 0.f;
          continue;
        }
        if (absl::Status s = group->barrier(); !s.ok())
          return s;
        const uint32_t mix = uint32_t(r + 1) * 2654435761u ^
                             uint32_t(group->rank() + 1) * 40503u;
        std::this_thread::sleep_for(kIdleGap * ((mix >> 7) % 5) / 4);
        const Clock::time_point t0 = Clock::now();
        if (absl::Status s = group->allReduceSum(buf.data(), p.floats); !s.ok())
          return s;
        if (r > 0)
          *out++ = float(secondsSince(t0));
      }
    return absl::OkStatus();
  };

  // mine[c]: the world's all-reduce call c (probe by probe, reps each);
  // mine[C + round·C + c]: this rank's pair's in that round.
  const size_t P = std::size(kProbes);
  size_t C = 0;
  for (const Probe &p : kProbes)
    C += size_t(p.reps);
  const int R = world > 2 ? rounds(world) : 0; // 2 ranks: the pair is the world
  std::vector<float> mine(C + size_t(R) * C, 0.f);
  if (absl::Status s = allReduces(&comm, mine.begin()); !s.ok())
    return s;
  for (int round = 0; round < R; ++round) {
    const int peer = partnerIn(round, rank, world);
    std::unique_ptr<comm::Communicator> pair;
    if (peer >= 0) {
      absl::StatusOr<std::unique_ptr<comm::Communicator>> c =
          comm.split({std::min(rank, peer), std::max(rank, peer)});
      if (!c.ok())
        return c.status();
      pair = std::move(*c);
    }
    if (absl::Status s = allReduces(pair.get(), mine.begin() + C * (1 + round));
        !s.ok())
      return s;
    if (absl::Status s = comm.barrier(); !s.ok()) // the next round together
      return s;
  }
  absl::StatusOr<std::vector<float>> all = gatherFloats(comm, device, mine);
  if (!all.ok())
    return all.status();
  const size_t stride = mine.size();
  auto at = [&](int r, size_t i) { return double((*all)[r * stride + i]); };

  // Probe p's cost over ranks `who` (calls from index `first`): each call's
  // shortest time among them (from the last arrival), averaged
  // (costFromLastArrival).
  auto probeCost = [&](const std::vector<int> &who, size_t first, size_t p) {
    size_t c0 = first;
    for (size_t q = 0; q < p; ++q)
      c0 += size_t(kProbes[q].reps);
    std::vector<std::vector<double>> byRank;
    for (int r : who) {
      byRank.emplace_back();
      for (int c = 0; c < kProbes[p].reps; ++c)
        byRank.back().push_back(at(r, c0 + size_t(c)));
    }
    return costFromLastArrival(byRank);
  };
  auto ringFit = [&](std::vector<int> who, size_t first) {
    std::vector<std::pair<double, double>> pts;
    for (size_t p = 0; p < P; ++p)
      pts.push_back({double(kProbes[p].floats * sizeof(float)),
                     probeCost(who, first, p)});
    LinearFit f = fitLatencyBandwidth(pts);
    const int n = int(who.size());
    return PairFigures{who.front(), who.back(), f.latencyS / ringSteps(n) * 1e6,
                       gbps(f.bytesPerS * ringShare(n))};
  };
  std::vector<int> everyone(world);
  for (int r = 0; r < world; ++r)
    everyone[r] = r;
  if (options.progress)
    for (size_t p = 0; p < P; ++p)
      options.progress(absl::StrFormat(
          "all-reduce %8d B  %9.1f us (mean from the last arrival)",
          kProbes[p].floats * sizeof(float), probeCost(everyone, 0, p) * 1e6));
  NetworkFigures out;
  const PairFigures net = ringFit(everyone, 0);
  out.latencyUs = net.latencyUs;
  out.bandwidthGbps = net.bandwidthGbps;
  if (world == 2)
    out.links.push_back(net);
  for (int round = 0; round < R; ++round)
    for (int a = 0; a < world; ++a)
      if (const int b = partnerIn(round, a, world); b > a)
        out.links.push_back(ringFit({a, b}, P * (1 + round)));
  std::sort(out.links.begin(), out.links.end(),
            [](const PairFigures &x, const PairFigures &y) {
              return std::pair(x.a, x.b) < std::pair(y.a, y.b);
            });
  return out;
}

} // namespace galaxy::rt
