// Model and training values: each error names the key and the numbers.
#include "compiler/config/validate.h"

#include "tests/config/contains.h"
#include "tests/config/validate_util.h"
#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

using testing::named;
using testing::serialError;

TEST(ValidateModel, HiddenSizeDivisibleByHeads) {
  GalaxyConfig c = named();
  c.hidden_size = 100;
  EXPECT_CONTAINS(serialError(c), "m.json: hidden_size 100 is not divisible by "
                                  "num_attention_heads 12");
}

// The KV cache's positions (max_seq, 0: pad_size) stop at the model's.
TEST(ValidateModel, MaxSeqWithinMaxPositionEmbeddings) {
  GalaxyConfig c = named();
  c.max_seq = 513;
  EXPECT_CONTAINS(serialError(c), "m.json: max_seq 513 is outside [0, "
                                  "max_position_embeddings 512]");
  c.max_seq = -1;
  EXPECT_CONTAINS(serialError(c), "max_seq -1 is outside");
  for (int64_t ok : {0, 1, 512}) {
    c.max_seq = ok;
    EXPECT_TRUE(validate(c, ParallelMode::kSerial, 0).ok()) << ok;
  }
}

TEST(ValidateModel, SizesMustBePositive) {
  for (auto [field, key] :
       {std::pair{&GalaxyConfig::vocab_size, "vocab_size"},
        std::pair{&GalaxyConfig::hidden_size, "hidden_size"},
        std::pair{&GalaxyConfig::num_hidden_layers, "num_hidden_layers"},
        std::pair{&GalaxyConfig::num_attention_heads, "num_attention_heads"},
        std::pair{&GalaxyConfig::intermediate_size, "intermediate_size"},
        std::pair{&GalaxyConfig::batch_size, "batch_size"},
        std::pair{&GalaxyConfig::pad_size, "pad_size"},
        std::pair{&GalaxyConfig::num_classes, "num_classes"},
        std::pair{&GalaxyConfig::lora_dim, "lora_dim"},
        std::pair{&GalaxyConfig::num_microbatches, "num_microbatches"}}) {
    GalaxyConfig c = named();
    c.*field = 0;
    EXPECT_CONTAINS(serialError(c), std::string(key) + " = 0 must be positive");
    c.*field = -3;
    EXPECT_CONTAINS(serialError(c),
                    std::string(key) + " = -3 must be positive");
  }
}

TEST(ValidateModel, PadSizeWithinPositions) {
  GalaxyConfig c = named();
  c.pad_size = 600;
  EXPECT_CONTAINS(serialError(c),
                  "pad_size 600 exceeds max_position_embeddings 512");
  c.pad_size = 512;
  EXPECT_TRUE(validate(c, ParallelMode::kSerial, 0).ok());
}

TEST(ValidateModel, DropoutsInHalfOpenUnitInterval) {
  GalaxyConfig c = named();
  c.hidden_dropout_prob = 1.0;
  EXPECT_CONTAINS(serialError(c), "hidden_dropout_prob = 1 is outside [0, 1)");
  c = named();
  c.attention_probs_dropout_prob = -0.5;
  EXPECT_CONTAINS(serialError(c),
                  "attention_probs_dropout_prob = -0.5 is outside [0, 1)");
  c = named();
  c.lora_dropout = 1.5;
  EXPECT_CONTAINS(serialError(c), "lora_dropout = 1.5 is outside [0, 1)");
  c = named();
  c.hidden_dropout_prob = 0.0;
  EXPECT_TRUE(validate(c, ParallelMode::kSerial, 0).ok());
}

TEST(ValidateModel, HiddenActIsAGelu) {
  GalaxyConfig c = named();
  c.hidden_act = Activation::kRelu;
  EXPECT_CONTAINS(serialError(c), "hidden_act = \"relu\" is not supported; "
                                  "expected \"gelu\" or \"gelu_new\"");
}

TEST(ValidateModel, OtherRanges) {
  GalaxyConfig c = named();
  c.pad_token_id = 21128;
  EXPECT_CONTAINS(serialError(c),
                  "pad_token_id = 21128 is outside [0, vocab_size 21128)");
  c = named();
  c.layer_norm_eps = 0;
  EXPECT_CONTAINS(serialError(c), "layer_norm_eps = 0 must be positive");
  c = named();
  c.learning_rate = -1e-3;
  EXPECT_CONTAINS(serialError(c), "learning_rate = -0.001 must be >= 0");
  c = named();
  c.adam_beta2 = 1.0;
  EXPECT_CONTAINS(serialError(c), "adam_beta2 = 1 is outside [0, 1)");
  c = named();
  c.adam_epsilon = 0;
  EXPECT_CONTAINS(serialError(c), "adam_epsilon = 0 must be positive");
  c = named();
  c.seed = -1;
  EXPECT_CONTAINS(serialError(c), "seed = -1 must be >= 0");
}

} // namespace
} // namespace galaxy::config
