#include "tools/galaxy-run/calibrate.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/comm/job_token.h"
#include "runtime/cpu/gemm.h"
#include "runtime/exec/calibration.h"
#include "runtime/plan/devices_io.h"
#include "tools/galaxy-run/common.h"
#include "tools/galaxy-run/job_agreement.h"
#include "tools/galaxy-run/memory_check.h"
#include "tools/galaxy-run/outputs.h"

#ifdef GALAXY_EXECUTOR_DEVICE_MEMORY
#include "runtime/cuda/cuda_backend.h"
#include "runtime/exec/staged_communicator.h"
#endif

namespace galaxy::run {

const char *const kCalibrateUsage =
    R"(Calibrate (the devices of a job, for galaxyc --auto --devices):
  galaxy-run --calibrate [CONFIG | PLAN_DIR] -o DEVICES.json [--nproc N |
                     rank flags/env of galaxy-run --help] [--backend cpu|cuda]
                     every rank times its GEMMs at the model's shapes (the
                     linears of one layer of CONFIG, or of the config PLAN_DIR
                     was compiled from: forward, dx and dW at batch x seq
                     rows; default BERT-base, batch 4 x seq 32) through its
                     backend's own kernels, an elementwise add over the
                     largest activation, its free memory (the host's available
                     memory or the GPU's free memory, shared evenly by the
                     ranks on one host or GPU), and all-reduces of 1 KiB to
                     4 MiB over all ranks and over each pair through the
                     job's communicator (ring model: latency per step and
                     bandwidth per link, fitted; docs/launching.md);
                     rank 0 writes DEVICES.json atomically. Ranks measure at
                     the same time, so ranks sharing cores slow each other as
                     they will when training. A few seconds.
  --window SECONDS   time each kernel for this long (default 0.15)
)";

namespace {

using Clock = std::chrono::steady_clock;

struct CalibrateArgs {
  Args run; // launch, --nproc, --backend, --timeout, --job-token-file
  std::string source, out;
  double windowS = 0.15;
};

double parseNumber(const std::string &flag, const std::string &v, double lo,
                   double hi) {
  try {
    size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size() && x >= lo && x <= hi && std::isfinite(x))
      return x;
  } catch (...) {
  }
  fail(2, absl::StrCat(flag, " expects a number in [", lo, ", ", hi, "], got '",
                       v, "'"));
}

CalibrateArgs parseCalibrateArgs(int argc, char **argv) {
  CalibrateArgs a;
  FlagReader args(argc, argv);
  while (args.next()) {
    const std::string &flag = args.flag();
    auto val = [&] { return args.value(); };
    if (flag == "-h" || flag == "--help") {
      std::cout << kCalibrateUsage;
      std::exit(0);
    } else if (flag == "--calibrate")
      ;
    else if (flag == "-o" || flag == "--output")
      a.out = val();
    else if (flag == "--nproc")
      a.run.nproc = int64_t(parseNumber(flag, val(), 1, 4096));
    else if (flag == "--rank")
      a.run.launch.rank = int(parseNumber(flag, val(), 0, 1 << 20));
    else if (flag == "--world")
      a.run.launch.world = int(parseNumber(flag, val(), 1, 1 << 20));
    else if (flag == "--master")
      a.run.launch.master = val();
    else if (flag == "--job-token-file")
      a.run.jobTokenFile = val();
    else if (flag == "--timeout")
      a.run.timeoutS = parseNumber(flag, val(), kMinTimeoutS, kMaxTimeoutS);
    else if (flag == "--window")
      a.windowS = parseNumber(flag, val(), 0.001, 60);
    else if (flag == "--backend") {
      a.run.backend = val();
      if (a.run.backend != "cpu" && a.run.backend != "cuda")
        fail(2, "--backend expects cpu or cuda, got '" + a.run.backend + "'");
    } else if (!flag.empty() && flag[0] == '-')
      fail(2, "--calibrate: unknown option '" + args.arg() +
                  "' (galaxy-run --calibrate takes [CONFIG | PLAN_DIR] -o "
                  "DEVICES.json, --window, --backend and the rank flags; see "
                  "--help)");
    else if (a.source.empty())
      a.source = args.arg();
    else
      fail(2, "--calibrate: more than one config or plan given ('" + a.source +
                  "' and '" + args.arg() + "')");
    if (flag != "--nproc")
      args.passOn(a.run.childArgs);
  }
  if (a.run.nproc > 0 &&
      (a.run.launch.rank || a.run.launch.world || a.run.launch.master))
    fail(2, "--nproc launches the ranks itself; drop --rank/--world/--master");
  return a;
}

// The shapes to time: CONFIG's, or the config a plan was compiled from.
rt::CalibrationShapes shapesOf(const std::string &source) {
  if (source.empty())
    return {};
  struct stat st {};
  std::string json, origin = source;
  const bool isPlan =
      (::stat(source.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) ||
      absl::EndsWith(source, ".pb");
  if (isPlan) {
    std::string file;
    absl::StatusOr<plan::Plan> p = readPlan(source, 0, &file);
    if (!p.ok())
      fail(2, std::string(p.status().message()));
    json = p->config_json();
    origin = "the config of plan " + file;
    if (json.empty())
      fail(2, absl::StrCat("plan ", file,
                           " holds no config (built by hand?): give the "
                           "config file instead"));
  } else {
    std::ifstream in(source);
    if (!in)
      fail(2, absl::StrCat("--calibrate: cannot read ", source, ": ",
                           std::strerror(errno)));
    std::stringstream ss;
    ss << in.rdbuf();
    json = ss.str();
  }
  absl::StatusOr<rt::CalibrationShapes> s =
      rt::calibrationShapesFromConfig(json, origin);
  if (!s.ok())
    fail(2, std::string(s.status().message()));
  return *s;
}

std::string describe(const rt::CalibrationShapes &s) {
  return absl::StrFormat(
      "%s linears at %d rows, hidden %d, intermediate %d%s%s", s.model, s.rows,
      s.hidden, s.intermediate,
      s.kvHidden != s.hidden ? absl::StrFormat(", key/value %d", s.kvHidden)
                             : std::string(),
      s.matmul == plan::MATMUL_BF16 ? ", bf16 matmuls" : "");
}

// Rank 0 writes the file: it (and --nproc's launcher) must be told where.
void checkOut(const CalibrateArgs &args) {
  if (args.out.empty())
    fail(2, "--calibrate needs -o DEVICES.json (where rank 0 writes the "
            "measured devices)");
  checkOutput({"-o", args.out});
}

int launchCalibration(const CalibrateArgs &args) {
  checkOut(args);
  rt::LocalRanksOptions o;
  o.exe = "/proc/self/exe";
  o.args = args.run.childArgs;
  o.nproc = int(args.run.nproc);
  o.jobToken = launcherJobToken(args.run);
  return rt::runLocalRanks(o);
}

// Per-rank figures as floats (gathered in one all-gather): gflops,
// elementwise GB/s, memory bytes, threads, GPU, then the host name, then
// kRowsPoints (rows, GFLOP/s) pairs of gflopsByRows (rows 0: none).
constexpr size_t kHostChars = 64, kFixed = 5, kDeviceField = 4, kRowsPoints = 4;

std::vector<float> encodeRank(const rt::ComputeFigures &c, double memoryBytes,
                              int threads, int device,
                              const std::string &host) {
  std::vector<float> v = {float(c.gflops), float(c.elementwiseGbps),
                          float(memoryBytes), float(threads), float(device)};
  for (size_t i = 0; i < kHostChars; ++i)
    v.push_back(i < host.size() ? float(static_cast<unsigned char>(host[i]))
                                : 0.f);
  for (size_t i = 0; i < kRowsPoints; ++i) {
    const bool has = i < c.gflopsByRows.size();
    v.push_back(has ? float(c.gflopsByRows[i].first) : 0.f);
    v.push_back(has ? float(c.gflopsByRows[i].second) : 0.f);
  }
  return v;
}

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0)
    return "localhost";
  return std::string(buf).substr(0, kHostChars);
}

[[noreturn]] void failAt(int rank, const std::string &what,
                         const absl::Status &s) {
  fail(1,
       absl::StrCat("--calibrate: rank ", rank, ": ", what, ": ", s.message()));
}

// DEVICES.json from every rank's encodeRank() record and the network's
// figures.
plan::Devices devicesOf(const std::vector<float> &everyone, int world,
                        const std::string &backend,
                        const rt::NetworkFigures &net) {
  const size_t stride = kFixed + kHostChars + 2 * kRowsPoints;
  auto hostOf = [&](int r) {
    std::string h;
    for (size_t i = 0; i < kHostChars; ++i)
      if (char c = char(everyone[r * stride + kFixed + i]))
        h += c;
    return h;
  };
  plan::Devices out;
  for (int r = 0; r < world; ++r) {
    const float *f = &everyone[r * stride];
    // Ranks on one host (one GPU) share its memory evenly.
    int sharing = 0;
    for (int q = 0; q < world; ++q)
      sharing += hostOf(q) == hostOf(r) &&
                 everyone[q * stride + kDeviceField] == f[kDeviceField];
    plan::Device *d = out.add_devices();
    d->set_name(absl::StrCat("rank", r));
    d->set_host(hostOf(r));
    d->set_backend(backend);
    d->set_gflops(f[0]);
    d->set_elementwise_gbps(f[1]);
    d->set_memory_gib(double(f[2]) / std::max(sharing, 1) / double(1 << 30));
    d->set_threads(int(f[3]));
    for (size_t i = 0; i < kRowsPoints; ++i)
      if (const float *pt = f + kFixed + kHostChars + 2 * i; pt[0] > 0) {
        plan::GemmAtRows *g = d->add_gemm_at_rows();
        g->set_rows(int64_t(pt[0]));
        g->set_gflops(pt[1]);
      }
  }
  if (world > 1) {
    plan::Network *n = out.mutable_network();
    n->set_bandwidth_gbps(net.bandwidthGbps);
    n->set_latency_us(net.latencyUs);
    for (const rt::PairFigures &p : net.links) {
      plan::Link *l = n->add_links();
      l->set_a(p.a);
      l->set_b(p.b);
      l->set_bandwidth_gbps(p.bandwidthGbps);
      l->set_latency_us(p.latencyUs);
    }
  }
  return out;
}

// The lead rank's table of what it wrote.
void printDevices(const plan::Devices &out, const rt::NetworkFigures &net) {
  std::cerr << absl::StrFormat("%-6s %-16s %9s %9s %9s %7s\n", "device", "host",
                               "GFLOP/s", "elem GB/s", "mem GiB", "threads");
  for (const plan::Device &d : out.devices())
    std::cerr << absl::StrFormat(
        "%-6s %-16s %9.1f %9.1f %9.1f %7d\n", d.name(), d.host().substr(0, 16),
        d.gflops(), d.elementwise_gbps(), d.memory_gib(), d.threads());
  if (out.devices_size() > 1) {
    std::cerr << absl::StrFormat(
        "network (ring all-reduce fit): %.2f Gbit/s per link, %.1f us per "
        "step\n",
        net.bandwidthGbps, net.latencyUs);
    for (const rt::PairFigures &p : net.links)
      std::cerr << absl::StrFormat(
          "  rank %d <-> rank %d: %.2f Gbit/s, %.1f us\n", p.a, p.b,
          p.bandwidthGbps, p.latencyUs);
  }
}

} // namespace

bool isCalibrate(int argc, char **argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--calibrate")
      return true;
  return false;
}

int runCalibrate(int argc, char **argv, const CalibrateHooks &hooks) {
  const CalibrateArgs args = parseCalibrateArgs(argc, argv);
  const rt::CalibrationShapes shapes = shapesOf(args.source);
  if (args.run.nproc > 0)
    return launchCalibration(args);

  absl::StatusOr<rt::LaunchInfo> launch = rt::resolveLaunch(args.run.launch);
  if (!launch.ok())
    fail(2, std::string(launch.status().message()));
  const int rank = launch->rank, world = launch->world;
  const bool lead = rank == 0;
  if (lead)
    checkOut(args); // the other ranks' -o, if any, is ignored
  const Clock::time_point t0 = Clock::now();

  std::unique_ptr<rt::Backend> backend;
  void *stream = nullptr;
  int device = -1;
  rt::DeviceMemory *memory = nullptr;
  if (args.run.backend == "cuda") {
    backend = hooks.cudaBackend(*launch, &stream, &device);
#ifdef GALAXY_EXECUTOR_DEVICE_MEMORY
    memory = rt::cuda::deviceMemoryOf(*backend);
#endif
  } else {
    backend = rt::makeCpuBackend();
  }

  std::unique_ptr<comm::Communicator> comm, staged;
  comm::Communicator *hostComm = nullptr;
  if (world > 1) {
    comm::CommOptions co;
    co.rank = rank;
    co.world = world;
    co.masterHost = launch->masterHost;
    co.masterPort = launch->masterPort;
    co.timeout = std::chrono::milliseconds(int64_t(args.run.timeoutS * 1000));
    co.token = jobToken(args.run);
    if (co.token.empty() && lead)
      warnWithoutToken(
          absl::StrCat(launch->masterHost, ":", launch->masterPort));
    // Every rank times the same shapes the same way; a training rank that
    // reaches this rendezvous by mistake is refused by its plan's facts.
    co.facts = {{"job", "galaxy-run --calibrate"},
                {"calibration shapes", describe(shapes)},
                {"--backend", args.run.backend},
                {"--window", absl::StrCat(args.windowS)}};
    absl::StatusOr<std::unique_ptr<comm::Communicator>> c =
        hooks.connect(co, device, stream);
    if (!c.ok())
      fail(joinExitCode(c.status()),
           absl::StrCat("rank ", rank, " of ", world,
                        " cannot join the group at ", launch->masterHost, ":",
                        launch->masterPort, ": ", c.status().message()));
    comm = std::move(*c);
    hostComm = comm.get();
#ifdef GALAXY_EXECUTOR_DEVICE_MEMORY
    if (memory) {
      staged = comm::makeHostStagedCommunicator(*comm, *memory);
      hostComm = staged.get();
    }
#endif
  }
  if (lead)
    std::cerr << absl::StrFormat(
        "galaxy-run --calibrate: %d rank%s; backend %s; %s; timing %s\n", world,
        world == 1 ? "" : "s", backend->name(), backend->gemmDescription(),
        describe(shapes));

  rt::MeasureOptions mo;
  mo.windowS = args.windowS;
  if (hostComm)
    mo.together = [&] { return hostComm->barrier(); };
  mo.progress = [](const std::string &line) {
    std::cerr << "calibrate: " << line << "\n";
  };
  absl::StatusOr<rt::ComputeFigures> compute =
      rt::measureCompute(*backend, memory, shapes, mo);
  if (!compute.ok())
    failAt(rank, "measuring compute", compute.status());
  std::cerr << absl::StrFormat(
      "calibrate: a layer's linears %.1f GFLOP/s, elementwise %.1f GB/s\n",
      compute->gflops, compute->elementwiseGbps);

  double memoryBytes = 0;
  int threads = 0;
  if (device >= 0) {
#ifdef GALAXY_EXECUTOR_DEVICE_MEMORY
    absl::StatusOr<std::pair<int64_t, int64_t>> info =
        rt::cuda::deviceMemoryInfo(device);
    if (!info.ok())
      failAt(rank, "reading the GPU's free memory", info.status());
    memoryBytes = double(info->first);
#endif
  } else {
    std::optional<int64_t> avail = availableMemoryBytes();
    if (!avail)
      fail(1, "--calibrate: cannot read MemAvailable in /proc/meminfo");
    memoryBytes = double(*avail);
    threads = rt::cpu::threadsFromEnv().threads;
  }
  const std::string host = hostName();
  std::vector<float> everyone =
      encodeRank(*compute, memoryBytes, threads, device, host);
  if (hostComm) {
    absl::StatusOr<std::vector<float>> all =
        rt::gatherFloats(*hostComm, nullptr, everyone);
    if (!all.ok())
      failAt(rank, "gathering the figures", all.status());
    everyone = std::move(*all);
  }

  rt::NetworkFigures net;
  if (comm) {
    absl::StatusOr<rt::NetworkFigures> n =
        rt::measureNetwork(*comm, memory, mo);
    if (!n.ok())
      failAt(rank, "measuring the network", n.status());
    net = std::move(*n);
  }

  if (lead) {
    const plan::Devices out = devicesOf(everyone, world, args.run.backend, net);
    const std::string text = plan::devicesToJson(out);
    // What galaxyc will read must parse: a figure that came out zero or NaN
    // is a measuring failure, said here rather than at planning.
    if (absl::StatusOr<plan::Devices> back = plan::parseDevices(text, args.out);
        !back.ok())
      fail(1,
           absl::StrCat("--calibrate measured figures galaxyc would refuse: ",
                        back.status().message()));
    if (absl::Status s = writeTextAtomically(args.out, text); !s.ok())
      fail(1, std::string(s.message()));
    printDevices(out, net);
    std::cerr << absl::StrFormat(
        "galaxy-run: wrote %s (%d device%s) in %.1f s\n", args.out, world,
        world == 1 ? "" : "s",
        std::chrono::duration<double>(Clock::now() - t0).count());
  }
  if (hostComm)
    if (absl::Status s = hostComm->barrier(); !s.ok())
      failAt(rank, "final barrier", s);
  return 0;
}

} // namespace galaxy::run
