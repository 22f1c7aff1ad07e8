// The "dtype" key: matmul operand precision, fp32 (default) or bf16.
#include "compiler/config/enum_names.h"
#include "compiler/config/parse.h"
#include "compiler/config/to_json.h"
#include "compiler/config/validate.h"

#include "nlohmann/json.hpp"
#include "tests/config/contains.h"
#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

absl::StatusOr<DType> dtypeOf(const std::string &text) {
  absl::StatusOr<GalaxyConfig> c = parseConfig(text, "dtype.json");
  if (!c.ok())
    return c.status();
  EXPECT_TRUE(c->warnings.empty()) << c->warnings.front();
  return c->dtype;
}

TEST(DTypeKey, SpellingsAndAliases) {
  EXPECT_EQ(*dtypeOf("{}"), DType::kF32);
  EXPECT_EQ(*dtypeOf(R"({"dtype": "fp32"})"), DType::kF32);
  EXPECT_EQ(*dtypeOf(R"({"dtype": "float32"})"), DType::kF32);
  EXPECT_EQ(*dtypeOf(R"({"dtype": "bf16"})"), DType::kBF16);
  EXPECT_EQ(*dtypeOf(R"({"dtype": "bfloat16"})"), DType::kBF16);
  EXPECT_EQ(*dtypeOf(R"({"dtype": "BF16"})"), DType::kBF16);
  EXPECT_EQ(toString(DType::kF32), "fp32");
  EXPECT_EQ(toString(DType::kBF16), "bf16");
}

TEST(DTypeKey, BadValuesNameTheKeyTheValueAndTheChoices) {
  absl::StatusOr<DType> d = dtypeOf(R"({"dtype": "fp16"})");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_CONTAINS(d.status().message(),
                  "dtype.json: dtype = \"fp16\" is not supported; expected one "
                  "of \"fp32\", \"bf16\", \"float32\", \"bfloat16\"");
  d = dtypeOf(R"({"dtype": 16})");
  ASSERT_FALSE(d.ok());
  EXPECT_CONTAINS(d.status().message(),
                  "dtype = 16 is an integer; expected a string");
  d = dtypeOf(R"({"dtype": null})");
  ASSERT_FALSE(d.ok());
  EXPECT_CONTAINS(d.status().message(), "dtype = null is null");
}

// bf16 goes with every mode; the resolved config writes the canonical name
// and reads back to the same dtype.
TEST(DTypeKey, ValidInEveryModeAndRoundTrips) {
  GalaxyConfig c;
  c.dtype = DType::kBF16;
  for (ParallelMode m : {ParallelMode::kDP, ParallelMode::kTP,
                         ParallelMode::kSP, ParallelMode::kGalaxy})
    EXPECT_TRUE(validate(c, m, 2).ok()) << validate(c, m, 2);
  absl::StatusOr<GalaxyConfig> in =
      parseConfig(R"({"dtype": "bfloat16"})", "in.json");
  ASSERT_TRUE(in.ok()) << in.status();
  absl::StatusOr<GalaxyConfig> r = resolveConfig(*in, {});
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string text = toJson(*r);
  EXPECT_EQ(nlohmann::json::parse(text)["dtype"], "bf16");
  absl::StatusOr<GalaxyConfig> back = parseConfig(text, "out.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->dtype, DType::kBF16);
  EXPECT_EQ(toJson(*back), text);
}

} // namespace
} // namespace galaxy::config
