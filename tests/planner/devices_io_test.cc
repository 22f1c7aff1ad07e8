// runtime/plan/devices_io: DEVICES.json parsed and checked, errors naming the
// key.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "runtime/plan/devices_io.h"

namespace galaxy::plan {
namespace {

constexpr const char *kTwo = R"({
  "devices": [{"name": "fast", "host": "a", "backend": "cpu", "gflops": 300,
               "elementwise_gbps": 20, "memory_gib": 16, "threads": 4,
               "gemm_at_rows": [{"rows": 16, "gflops": 150},
                                {"rows": 128, "gflops": 300}]},
              {"name": "slow", "gflops": 100, "memory_gib": 8}],
  "network": {"bandwidth_gbps": 10, "latency_us": 50,
              "links": [{"a": 0, "b": 1, "bandwidth_gbps": 1, "latency_us": 200}]}
})";

std::string errorOf(const std::string &json) {
  auto d = parseDevices(json, "DEV.json");
  EXPECT_FALSE(d.ok()) << json;
  return d.ok() ? "" : std::string(d.status().message());
}

TEST(DevicesIo, ParsesEveryField) {
  auto d = parseDevices(kTwo, "DEV.json");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->devices_size(), 2);
  EXPECT_EQ(d->devices(0).name(), "fast");
  EXPECT_EQ(d->devices(0).gflops(), 300);
  EXPECT_EQ(d->devices(0).elementwise_gbps(), 20);
  EXPECT_EQ(d->devices(0).threads(), 4);
  EXPECT_EQ(d->devices(1).memory_gib(), 8);
  EXPECT_EQ(d->network().links(0).latency_us(), 200);
  ASSERT_EQ(d->devices(0).gemm_at_rows_size(), 2);
  EXPECT_EQ(d->devices(0).gemm_at_rows(0).rows(), 16);
  EXPECT_EQ(d->devices(0).gemm_at_rows(0).gflops(), 150);
  EXPECT_EQ(d->devices(1).gemm_at_rows_size(), 0); // optional
}

TEST(DevicesIo, GemmAtRowsMustAscend) {
  for (const char *points :
       {R"([{"rows": 64, "gflops": 1}, {"rows": 32, "gflops": 2}])",
        R"([{"rows": 32, "gflops": 1}, {"rows": 64, "gflops": 0}])"})
    EXPECT_NE(errorOf(std::string(R"({"devices": [{"gflops": 1, "memory_gib": 1,
        "gemm_at_rows": )") +
                      points + "}]}")
                  .find("gemm_at_rows[1] must have rows > 0"),
              std::string::npos)
        << points;
}

TEST(DevicesIo, RoundTripsThroughJson) {
  auto d = parseDevices(kTwo, "DEV.json");
  ASSERT_TRUE(d.ok());
  auto back = parseDevices(devicesToJson(*d), "again");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->SerializeAsString(), d->SerializeAsString());
  EXPECT_NE(devicesToJson(*d).find("\"memory_gib\""), std::string::npos);
}

TEST(DevicesIo, ErrorsNameTheKey) {
  std::string e = errorOf(R"({"devices": [{"gflop": 1, "memory_gib": 1}]})");
  EXPECT_NE(e.find("DEV.json"), std::string::npos) << e;
  EXPECT_NE(e.find("gflop"), std::string::npos) << e;
  e = errorOf(R"({"devices": [{"gflops": 1, "memory_gib": 1},
                 {"name": "b", "gflops": -2, "memory_gib": 1}],
                 "network": {"bandwidth_gbps": 1}})");
  EXPECT_NE(e.find("devices[1] (\"b\").gflops"), std::string::npos) << e;
  e = errorOf(R"({"devices": [{"gflops": 1}]})");
  EXPECT_NE(e.find("devices[0].memory_gib"), std::string::npos) << e;
  e = errorOf(R"({"devices": []})");
  EXPECT_NE(e.find("\"devices\" is empty"), std::string::npos) << e;
  e = errorOf(R"({"devices": [{"gflops": 1, "memory_gib": 1},
                 {"gflops": 1, "memory_gib": 1}]})");
  EXPECT_NE(e.find("network.bandwidth_gbps"), std::string::npos) << e;
  e = errorOf(R"({"devices": [{"gflops": 1, "memory_gib": 1},
                 {"gflops": 1, "memory_gib": 1}],
                 "network": {"bandwidth_gbps": 1, "links": [{"a": 0, "b": 2,
                 "bandwidth_gbps": 1}]}})");
  EXPECT_NE(e.find("network.links[0]"), std::string::npos) << e;
  e = errorOf(R"({"devices": [{"gflops": 1, "memory_gib": 1,
                 "backend": "tpu"}]})");
  EXPECT_NE(e.find("devices[0].backend"), std::string::npos) << e;
}

TEST(DevicesIo, OneDeviceNeedsNoNetwork) {
  EXPECT_TRUE(
      parseDevices(R"({"devices": [{"gflops": 1, "memory_gib": 1}]})", "one")
          .ok());
}

TEST(DevicesIo, MissingFileSaysHowToMakeOne) {
  auto d = readDevicesFile("/nonexistent/DEV.json");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("--calibrate"), std::string::npos);
}

} // namespace
} // namespace galaxy::plan
