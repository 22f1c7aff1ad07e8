// PEFT: one method at a time, and each method's own parameters.
#include "compiler/config/parse.h"
#include "compiler/config/validate.h"

#include "tests/config/contains.h"
#include "tests/config/validate_util.h"
#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

using testing::serialError;

GalaxyConfig notFull() {
  GalaxyConfig c;
  c.full_model = false;
  return c;
}

TEST(Peft, NoFlagMeansFull) {
  GalaxyConfig c = notFull();
  EXPECT_EQ(*peftMethod(c), PeftMethod::kFull);
  absl::StatusOr<GalaxyConfig> r = resolveConfig(c, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->full_model);
}

TEST(Peft, EachFlagSelectsItsMethod) {
  GalaxyConfig c = notFull();
  c.use_lora = true;
  EXPECT_EQ(*peftMethod(c), PeftMethod::kLora);
  c = notFull();
  c.use_adapter = true;
  EXPECT_EQ(*peftMethod(c), PeftMethod::kAdapter);
  c = notFull();
  c.use_side = true;
  EXPECT_EQ(*peftMethod(c), PeftMethod::kSide);
  c.use_side_only = true; // side-only refines side
  EXPECT_EQ(*peftMethod(c), PeftMethod::kSideOnly);
}

TEST(Peft, TwoMethodsAreAnError) {
  GalaxyConfig c = notFull();
  c.use_lora = true;
  c.use_adapter = true;
  EXPECT_CONTAINS(serialError(c), "use_lora and use_adapter are both true; "
                                  "choose one PEFT method");
  c = GalaxyConfig(); // full_model defaults to true
  c.use_lora = true;
  EXPECT_CONTAINS(serialError(c), "full_model and use_lora are both true; "
                                  "choose one PEFT method");
  c.use_side = true;
  EXPECT_CONTAINS(serialError(c), "full_model, use_lora and use_side are all "
                                  "true; choose one PEFT method");
}

TEST(Peft, ExplicitFullModelInFileConflicts) {
  absl::StatusOr<GalaxyConfig> c =
      parseConfig(R"({"full_model": true, "use_adapter": true})", "f.json");
  ASSERT_TRUE(c.ok());
  EXPECT_CONTAINS(serialError(*c), "f.json: full_model and use_adapter are "
                                   "both true; choose one PEFT method");
}

TEST(Peft, LoraTargetModules) {
  GalaxyConfig c = notFull();
  c.use_lora = true;
  c.lora_target_modules = {"query", "q_proj"};
  EXPECT_CONTAINS(
      serialError(c),
      "lora_target_modules entry \"q_proj\" is not allowed for bert; "
      "expected some of \"query\", \"key\", \"value\", "
      "\"attention_output\", \"intermediate\", \"output\"");
  c.lora_target_modules = {"value", "value"};
  EXPECT_CONTAINS(serialError(c), "lora_target_modules lists \"value\" twice");
  c.lora_target_modules = {};
  EXPECT_CONTAINS(serialError(c), "lora_target_modules is empty");
  c.lora_target_modules = {"query",        "key",   "value", "attention_output",
                           "intermediate", "output"};
  EXPECT_TRUE(validate(c, ParallelMode::kSerial, 0).ok());
}

TEST(Peft, SideReductionFactorDividesHiddenSize) {
  GalaxyConfig c = notFull();
  c.use_side = true;
  c.side_reduction_factor = 7;
  EXPECT_CONTAINS(serialError(c),
                  "side_reduction_factor 7 does not divide hidden_size 768");
  c.side_reduction_factor = 128; // 768/128 = 6 wide, 12 heads do not fit
  EXPECT_CONTAINS(serialError(c), "side width hidden_size / "
                                  "side_reduction_factor = 6 is not divisible "
                                  "by num_attention_heads 12");
  // Unused by a full model: no error.
  c.use_side = false;
  EXPECT_TRUE(validate(c, ParallelMode::kSerial, 0).ok());
}

TEST(Peft, AdapterReductionDividesHiddenSize) {
  GalaxyConfig c = notFull();
  c.use_adapter = true;
  c.adapter_reduction_dim = 10;
  EXPECT_CONTAINS(serialError(c),
                  "adapter_reduction_dim 10 does not divide hidden_size 768");
}

} // namespace
} // namespace galaxy::config
