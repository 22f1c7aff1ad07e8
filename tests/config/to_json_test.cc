// toJson writes every key and reads back to the same config.
#include "compiler/config/to_json.h"

#include "compiler/config/parse.h"
#include "compiler/config/validate.h"
#include "nlohmann/json.hpp"
#include "tests/config/contains.h"
#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

TEST(ToJson, WritesEveryKeyAndNoWarningsOnReload) {
  GalaxyConfig c;
  std::string text = toJson(c);
  nlohmann::json j = nlohmann::json::parse(text);
  // Every key of GalaxyConfig once, except another family's own keys (a
  // BERT config.json has no rope_theta).
  EXPECT_EQ(j.size(), 65u);
  EXPECT_EQ(j["comm_overlap_tiles"], 1); // compiler/CommTiling.h
  EXPECT_EQ(j["max_seq"], 0);            // inference keys (docs/inference.md)
  EXPECT_EQ(j["inference"], false);
  EXPECT_EQ(j["task"], "classification");
  EXPECT_FALSE(j.contains("rope_theta"));
  EXPECT_EQ(j["hidden_size"], 768);
  EXPECT_EQ(j["dtype"], "fp32");
  EXPECT_EQ(j["con_parallel_method"], "SP");
  EXPECT_TRUE(j["world_size"].is_null());
  EXPECT_EQ(j["lora_target_modules"], (nlohmann::json{"query", "value"}));
  absl::StatusOr<GalaxyConfig> back = parseConfig(text, "back.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->warnings.empty());
  EXPECT_EQ(toJson(*back), text);
}

TEST(ToJson, ResolvedConfigRoundTrips) {
  absl::StatusOr<GalaxyConfig> c = parseConfig(R"({
    "use_lora": true, "lora_r": 4, "optimizer": "adamw",
    "learning_rate": 3e-4, "con_parallel_method": null,
    "parallel_mode": "galaxy", "tp_num_attention_heads_list": [8, 4]})",
                                               "in.json");
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<GalaxyConfig> r = resolveConfig(*c, {});
  ASSERT_TRUE(r.ok()) << r.status();
  std::string text = toJson(*r);
  EXPECT_CONTAINS(text, "\"tp_intermediate_size_list\": [\n    1536,");
  EXPECT_CONTAINS(text, "\"con_parallel_method\": \"None\"");
  EXPECT_CONTAINS(text, "\"lora_dim\": 4");
  EXPECT_CONTAINS(text, "\"learning_rate\": 0.0003");
  EXPECT_CONTAINS(text, "\"world_size\": 2");
  absl::StatusOr<GalaxyConfig> back = parseConfig(text, "out.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(toJson(*back), text);
  // The resolved config is already resolved: resolving again changes nothing.
  absl::StatusOr<GalaxyConfig> again = resolveConfig(*back, {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(toJson(*again), text);
  EXPECT_TRUE(again->warnings.empty());
}

} // namespace
} // namespace galaxy::config
