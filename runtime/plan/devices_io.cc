#include "runtime/plan/devices_io.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace galaxy::plan {
namespace {

absl::Status bad(const std::string &origin, const std::string &what) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", what));
}

bool positive(double v) { return std::isfinite(v) && v > 0; }

} // namespace

absl::StatusOr<Devices> parseDevices(const std::string &json,
                                     const std::string &origin) {
  Devices d;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false; // a misspelt key must not pass silently
  auto st = google::protobuf::util::JsonStringToMessage(json, &d, opts);
  if (!st.ok())
    return bad(origin, absl::StrCat("not a device description (",
                                    std::string(st.message()),
                                    "); expected {\"devices\": [{\"name\", "
                                    "\"gflops\", \"memory_gib\", ...}], "
                                    "\"network\": {\"bandwidth_gbps\", "
                                    "\"latency_us\"}}"));
  if (d.devices_size() == 0)
    return bad(origin, "\"devices\" is empty: list one entry per rank");
  for (int i = 0; i < d.devices_size(); ++i) {
    const Device &dev = d.devices(i);
    std::string at = absl::StrCat("devices[", i, "]");
    if (!dev.name().empty())
      absl::StrAppend(&at, " (\"", dev.name(), "\")");
    if (!positive(dev.gflops()))
      return bad(origin,
                 absl::StrCat(at, ".gflops must be > 0, got ", dev.gflops()));
    if (!positive(dev.memory_gib()))
      return bad(origin, absl::StrCat(at, ".memory_gib must be > 0, got ",
                                      dev.memory_gib()));
    if (dev.elementwise_gbps() != 0 && !positive(dev.elementwise_gbps()))
      return bad(origin,
                 absl::StrCat(at,
                              ".elementwise_gbps must be > 0 when given, "
                              "got ",
                              dev.elementwise_gbps()));
    if (dev.threads() < 0)
      return bad(origin, absl::StrCat(at, ".threads must be >= 0"));
    for (int k = 0; k < dev.gemm_at_rows_size(); ++k) {
      const GemmAtRows &g = dev.gemm_at_rows(k);
      if (g.rows() <= 0 || !positive(g.gflops()) ||
          (k > 0 && g.rows() <= dev.gemm_at_rows(k - 1).rows()))
        return bad(origin, absl::StrCat(at, ".gemm_at_rows[", k,
                                        "] must have rows > 0 (ascending) "
                                        "and gflops > 0"));
    }
    if (!dev.backend().empty() && dev.backend() != "cpu" &&
        dev.backend() != "cuda")
      return bad(origin, absl::StrCat(at,
                                      ".backend must be \"cpu\" or "
                                      "\"cuda\", got \"",
                                      dev.backend(), "\""));
  }
  const Network &n = d.network();
  if (d.devices_size() > 1) {
    if (!positive(n.bandwidth_gbps()))
      return bad(origin, absl::StrCat("network.bandwidth_gbps must be > 0 "
                                      "for ",
                                      d.devices_size(), " devices, got ",
                                      n.bandwidth_gbps()));
    if (!std::isfinite(n.latency_us()) || n.latency_us() < 0)
      return bad(origin, "network.latency_us must be >= 0");
  }
  for (int i = 0; i < n.links_size(); ++i) {
    const Link &l = n.links(i);
    std::string at = absl::StrCat("network.links[", i, "]");
    if (l.a() < 0 || l.b() < 0 || l.a() >= d.devices_size() ||
        l.b() >= d.devices_size() || l.a() == l.b())
      return bad(origin,
                 absl::StrCat(at, " names ranks ", l.a(), " and ", l.b(),
                              "; need two different ranks in "
                              "[0, ",
                              d.devices_size(), ")"));
    if (!positive(l.bandwidth_gbps()) || !std::isfinite(l.latency_us()) ||
        l.latency_us() < 0)
      return bad(origin, absl::StrCat(at, ": bandwidth_gbps must be > 0 and "
                                          "latency_us >= 0"));
  }
  return d;
}

absl::StatusOr<Devices> readDevicesFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat(
        "cannot read device description ", path,
        " (write one with `galaxy-run --calibrate -o ", path, "`)"));
  std::ostringstream ss;
  ss << in.rdbuf();
  return parseDevices(ss.str(), path);
}

std::string devicesToJson(const Devices &devices) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(devices, &out, opts);
  return out;
}

} // namespace galaxy::plan
