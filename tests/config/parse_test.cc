// JSON reading: types, spellings, unknown keys and the prototype's quirks.
#include "compiler/config/parse.h"

#include <cstdio>
#include <fstream>

#include "tests/config/contains.h"
#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

using Strings = std::vector<std::string>;
using Ints = std::vector<int64_t>;

GalaxyConfig parseOk(const std::string &text) {
  absl::StatusOr<GalaxyConfig> c = parseConfig(text, "test.json");
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : GalaxyConfig{};
}

std::string parseError(const std::string &text) {
  absl::StatusOr<GalaxyConfig> c = parseConfig(text, "test.json");
  EXPECT_FALSE(c.ok()) << "expected an error for " << text;
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(c.status().message());
}

TEST(Parse, ReadsEveryGroup) {
  GalaxyConfig c = parseOk(R"({
    "hidden_size": 64, "num_attention_heads": 2, "hidden_act": "gelu_new",
    "batch_size": 16, "learning_rate": 0.001, "optimizer": "adamw",
    "use_lora": true, "lora_target_modules": ["query", "key"],
    "non_linearity": "relu", "parallel_mode": "galaxy", "world_size": 2,
    "tp_num_attention_heads_list": [1, 1], "seq_scatter_list": [20, 12],
    "att_parallel_method": "TP", "con_parallel_method": "SP",
    "mlp_parallel_method": "SP", "pp_schedule": "1f1b"})");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.hidden_act, Activation::kGeluNew);
  EXPECT_EQ(c.batch_size, 16);
  EXPECT_DOUBLE_EQ(c.learning_rate, 1e-3);
  EXPECT_EQ(c.optimizer, Optimizer::kAdamW);
  EXPECT_TRUE(c.use_lora);
  EXPECT_EQ(c.lora_target_modules, (Strings{"query", "key"}));
  EXPECT_EQ(c.non_linearity, Activation::kRelu);
  EXPECT_EQ(c.parallel_mode, ParallelMode::kGalaxy);
  EXPECT_EQ(c.world_size, 2);
  EXPECT_EQ(c.tp_num_attention_heads_list, (Ints{1, 1}));
  EXPECT_EQ(c.seq_scatter_list, (Ints{20, 12}));
  EXPECT_EQ(c.mlp_parallel_method, BlockMethod::kSP);
  EXPECT_EQ(c.pp_schedule, PipelineSchedule::k1F1B);
  EXPECT_TRUE(c.warnings.empty());
}

TEST(Parse, UnknownKeysWarnOncePerKey) {
  GalaxyConfig c = parseOk(R"({"model_name": "bert", "dropout": 0.1,
    "require_improvement": 1000, "hidden_size": 768})");
  EXPECT_EQ(c.warnings,
            (Strings{"unknown key 'dropout' in test.json; ignored",
                     "unknown key 'model_name' in test.json; ignored",
                     "unknown key 'require_improvement' in test.json; "
                     "ignored"}));
}

TEST(Parse, WrongTypeNamesKeyValueAndExpectedType) {
  EXPECT_CONTAINS(parseError(R"({"batch_size": "4"})"),
                  ("test.json: batch_size = \"4\" is a string; expected "
                   "an integer"));
  EXPECT_CONTAINS(parseError(R"({"learning_rate": "fast"})"),
                  ("learning_rate = \"fast\" is a string; expected a "
                   "number"));
  EXPECT_CONTAINS(parseError(R"({"use_lora": "yes"})"),
                  ("use_lora = \"yes\" is a string; expected true or "
                   "false"));
  EXPECT_CONTAINS(parseError(R"({"model_type": 3})"),
                  ("model_type = 3 is an integer; expected a string"));
  EXPECT_CONTAINS(parseError(R"({"seq_scatter_list": 32})"),
                  ("seq_scatter_list = 32 is an integer; expected a list "
                   "of integers"));
  EXPECT_CONTAINS(parseError(R"({"seq_scatter_list": [16, "16"]})"),
                  ("seq_scatter_list[1] = \"16\" is a string; expected "
                   "an integer"));
  EXPECT_CONTAINS(parseError(R"({"lora_target_modules": ["query", 1]})"),
                  ("lora_target_modules[1] = 1 is an integer; expected a "
                   "string"));
  EXPECT_CONTAINS(parseError(R"({"hidden_size": null})"),
                  ("hidden_size = null is null; expected an integer"));
}

TEST(Parse, IntegerKeysMustBeIntegral) {
  EXPECT_CONTAINS(parseError(R"({"pad_size": 32.5})"),
                  ("pad_size = 32.5 is not an integer"));
  EXPECT_CONTAINS(
      parseError(R"({"tp_intermediate_size_list": [1536.5, 1535.5]})"),
      ("tp_intermediate_size_list[0] = 1536.5 is not an "
       "integer"));
  EXPECT_CONTAINS(parseError(R"({"world_size": 99999999999})"),
                  ("world_size = 99999999999 is out of range"));
  EXPECT_EQ(parseOk(R"({"pad_size": 32.0})").pad_size, 32);
}

TEST(Parse, BooleansAcceptZeroAndOne) {
  GalaxyConfig c = parseOk(R"({"use_adapter": 1, "full_model": 0})");
  EXPECT_TRUE(c.use_adapter);
  EXPECT_FALSE(c.full_model);
  EXPECT_CONTAINS(parseError(R"({"use_adapter": 2})"),
                  ("use_adapter = 2 is an integer; expected true or "
                   "false (or 0/1)"));
}

TEST(Parse, EnumSpellings) {
  EXPECT_EQ(parseOk(R"({"parallel_mode": "TP"})").parallel_mode,
            ParallelMode::kTP);
  EXPECT_EQ(parseOk(R"({"con_parallel_method": null})").con_parallel_method,
            BlockMethod::kNone);
  EXPECT_EQ(parseOk(R"({"con_parallel_method": "None"})").con_parallel_method,
            BlockMethod::kNone);
  EXPECT_CONTAINS(parseError(R"({"optimizer": "adam"})"),
                  ("optimizer = \"adam\" is not supported; expected one "
                   "of \"sgd\", \"adamw\""));
  EXPECT_CONTAINS(parseError(R"({"parallel_mode": "hybrid"})"),
                  ("parallel_mode = \"hybrid\" is not supported; "
                   "expected one of \"serial\", \"dp\", \"tp\", \"sp\", "
                   "\"pp\", \"galaxy\""));
  EXPECT_CONTAINS(parseError(R"({"hidden_act": "tanh"})"),
                  ("hidden_act = \"tanh\" is not supported"));
  EXPECT_CONTAINS(parseError(R"({"non_linearity": "sigmoid"})"),
                  ("non_linearity = \"sigmoid\" is not supported; "
                   "expected one of \"gelu\", \"gelu_new\", \"relu\", "
                   "\"swish\""));
  EXPECT_CONTAINS(parseError(R"({"pp_schedule": "interleaved"})"),
                  ("pp_schedule = \"interleaved\" is not supported"));
  EXPECT_CONTAINS(parseError(R"({"att_parallel_method": null})"),
                  ("att_parallel_method = null is null; expected a "
                   "string"));
}

TEST(Parse, LoraRankSpellings) {
  EXPECT_EQ(parseOk(R"({"lora_att_dim": 4})").lora_dim, 4);
  EXPECT_EQ(parseOk(R"({"lora_r": 16})").lora_dim, 16);
  EXPECT_EQ(parseOk(R"({"lora_dim": 4, "lora_r": 4})").lora_dim, 4);
  EXPECT_TRUE(parseOk(R"({"lora_att_dim": 4})").warnings.empty());
  EXPECT_CONTAINS(parseError(R"({"lora_dim": 8, "lora_att_dim": 4})"),
                  ("lora_dim = 8 and lora_att_dim = 4 disagree"));
}

TEST(Parse, NullListsAndWorldMeanNotGiven) {
  GalaxyConfig c = parseOk(R"({"world_size": null, "dp_batch_list": null})");
  EXPECT_EQ(c.world_size, 0);
  EXPECT_TRUE(c.dp_batch_list.empty());
}

TEST(Parse, PeftFlagWithoutFullModelMeansNotFull) {
  EXPECT_FALSE(parseOk(R"({"use_lora": true})").full_model);
  EXPECT_FALSE(parseOk(R"({"use_side_only": true})").full_model);
  // An explicit full_model: true is kept so that validate can reject it.
  EXPECT_TRUE(parseOk(R"({"use_lora": true, "full_model": true})").full_model);
}

TEST(Parse, MicrobatchListSetsTheCount) {
  EXPECT_EQ(parseOk(R"({"pp_microbatch_list": [1, 1, 2]})").num_microbatches,
            3);
  EXPECT_EQ(parseOk(R"({"pp_microbatch_list": [2, 2], "num_microbatches": 4})")
                .num_microbatches,
            4);
}

TEST(Parse, BadDocuments) {
  EXPECT_CONTAINS(parseError("{\"hidden_size\": 768,"),
                  ("test.json: not valid JSON"));
  EXPECT_CONTAINS(parseError("[1, 2]"),
                  ("test.json: the config is an array; expected a JSON "
                   "object"));
}

// Found by tests/fuzz (config target): nlohmann throws out_of_range, not
// parse_error, for a number past double's range.
TEST(Parse, NumberPastDoubleIsAnError) {
  EXPECT_CONTAINS(parseError(R"({"layer_norm_eps": 1e400})"),
                  ("test.json: not valid JSON"));
  EXPECT_CONTAINS(parseError(R"({"learning_rate": -1e99999})"),
                  ("number overflow"));
}

TEST(Load, ReadsAFileAndNamesItInMessages) {
  std::string path = ::testing::TempDir() + "/galaxy_load_test.json";
  {
    std::ofstream out(path);
    out << R"({"hidden_size": 128, "epochs_typo": 3})";
  }
  absl::StatusOr<GalaxyConfig> c = loadConfig(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 128);
  EXPECT_EQ(c->source, path);
  EXPECT_EQ(c->warnings,
            (Strings{"unknown key 'epochs_typo' in " + path + "; ignored"}));
  std::remove(path.c_str());

  absl::StatusOr<GalaxyConfig> missing = loadConfig(path);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_CONTAINS(missing.status().message(), (path));
}

} // namespace
} // namespace galaxy::config
