// Which model a config describes (models/registry.h through parseConfig):
// model_type when given, else the family whose keys the file uses; a family
// without a builder is the first error, before any other key's.
#include "compiler/config/parse.h"
#include "compiler/config/validate.h"
#include "models/registry.h"

#include "tests/config/contains.h"
#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

std::string parseError(const std::string &text) {
  absl::StatusOr<GalaxyConfig> c = parseConfig(text, "m.json");
  EXPECT_FALSE(c.ok()) << "expected an error for " << text;
  return std::string(c.status().message());
}

TEST(ModelType, NoKeysAndBertKeysMeanBert) {
  for (const char *text : {"{}", R"({"type_vocab_size": 2})",
                           R"({"hidden_size": 64, "num_hidden_layers": 2})"}) {
    absl::StatusOr<GalaxyConfig> c = parseConfig(text, "m.json");
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->model_type, "bert") << text;
  }
}

TEST(ModelType, BartKeysAreNeverBert) {
  // The prototype's BART configs carry BERT's num_hidden_layers too;
  // encoder_layers wins, with a warning.
  absl::StatusOr<GalaxyConfig> c =
      parseConfig(R"({"d_model": 1024, "encoder_layers": 1,
                      "decoder_layers": 1, "num_hidden_layers": 2})",
                  "m.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "bart");
  EXPECT_EQ(c->hidden_size, 1024);
  EXPECT_EQ(c->num_hidden_layers, 1);
  EXPECT_EQ(c->decoder_layers, 1);
  EXPECT_EQ(c->task, "seq2seq");
  ASSERT_FALSE(c->warnings.empty());
  EXPECT_CONTAINS(c->warnings.front(),
                  "num_hidden_layers: read as encoder_layers");
}

TEST(ModelType, UnknownModelIsTheFirstError) {
  // hidden_size's type error would otherwise come first.
  EXPECT_CONTAINS(parseError(R"({"hidden_size": "big", "model_type": "gpt2"})"),
                  "model_type 'gpt2' is not a model Galaxy knows: available: "
                  "bert, llama, bart");
}

TEST(ModelType, LlamaKeysMeanLlamaWithItsDefaults) {
  absl::StatusOr<GalaxyConfig> c =
      parseConfig(R"({"rope_theta": 1e4, "hidden_size": 64})", "m.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->task, "causal_lm");
  EXPECT_EQ(c->vocab_size, 32000); // Hugging Face's LlamaConfig default
  EXPECT_EQ(c->lora_target_modules,
            (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(c->hidden_size, 64); // the file's value over the default
}

TEST(ModelType, GivenModelTypeWinsOverKeys) {
  // The prototype's LLaMA configs carry BERT's type_vocab_size.
  absl::StatusOr<GalaxyConfig> llama =
      parseConfig(R"({"model_type": "llama", "type_vocab_size": 2})", "m.json");
  ASSERT_TRUE(llama.ok()) << llama.status();
  EXPECT_EQ(llama->model_type, "llama");
  absl::StatusOr<GalaxyConfig> c =
      parseConfig(R"({"model_type": "bert", "d_model": 8})", "m.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model_type, "bert");
}

TEST(ModelType, UnknownAndAmbiguous) {
  EXPECT_CONTAINS(parseError(R"({"model_type": "gpt2"})"),
                  "model_type 'gpt2' is not a model Galaxy knows");
  EXPECT_CONTAINS(parseError(R"({"d_model": 8, "type_vocab_size": 2})"),
                  "keys belong to bert (type_vocab_size) and bart (d_model); "
                  "set model_type");
}

TEST(ModelType, StageListCountsTheModelsLayers) {
  const models::ModelSpec *bert = models::findModel("bert");
  ASSERT_NE(bert, nullptr);
  GalaxyConfig c;
  c.num_hidden_layers = 4;
  EXPECT_EQ(models::layerCount(*bert, c), 4);
  c.parallel_mode = ParallelMode::kPP;
  c.stage_num_hidden_layers_list = {1, 2};
  EXPECT_CONTAINS(std::string(validate(c, ParallelMode::kPP, 0).message()),
                  "num_hidden_layers is 4");
}

} // namespace
} // namespace galaxy::config
