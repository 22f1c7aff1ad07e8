// PEFT adapter folders (runtime/exec/peft_adapter.h) on parameter lists of
// BERT and LLaMA shapes: PEFT's target_modules, modules_to_save and task_type
// derived from the names alone, and a written folder read back or refused.
// galaxy-run's end-to-end round trip is tests/peft/run_peft_adapter.py.
#include "runtime/exec/peft_adapter.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "gtest/gtest.h"

namespace galaxy::rt {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kR = 4;

std::string loraConfig(const std::string &extra = "") {
  return R"({"use_lora": true, "lora_dim": 4, "lora_alpha": 8,
             "lora_dropout": 0.1)" +
         extra + "}";
}

// A linear `module` [out, in], with LoRA factors when `lora`.
void linear(std::vector<ModelParam> &ps, const std::string &module, int64_t out,
            int64_t in, bool lora, bool bias = true) {
  ps.push_back({module + ".weight", {out, in}, false});
  if (bias)
    ps.push_back({module + ".bias", {out}, false});
  if (lora) {
    ps.push_back({module + ".lora_A.weight", {kR, in}, true});
    ps.push_back({module + ".lora_B.weight", {out, kR}, true});
  }
}

// BERT's encoder linears, two layers; LoRA on the named targets.
std::vector<ModelParam> bert(const std::vector<std::string> &targets) {
  auto on = [&](const std::string &t) {
    return std::find(targets.begin(), targets.end(), t) != targets.end();
  };
  std::vector<ModelParam> ps = {
      {"bert.embeddings.word_embeddings.weight", {30, 8}, false},
      {"classifier.weight", {3, 8}, true},
      {"classifier.bias", {3}, true}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    for (const char *qkv : {"query", "key", "value"})
      linear(ps, p + "attention.self." + qkv, 8, 8, on(qkv));
    linear(ps, p + "attention.output.dense", 8, 8, on("attention_output"));
    ps.push_back({p + "attention.output.LayerNorm.weight", {8}, false});
    linear(ps, p + "intermediate.dense", 16, 8, on("intermediate"));
    linear(ps, p + "output.dense", 8, 16, on("output"));
  }
  linear(ps, "bert.pooler.dense", 8, 8, false);
  return ps;
}

// LLaMA's decoder linears (no biases), two layers, and an untied lm_head.
std::vector<ModelParam> llama(const std::vector<std::string> &targets) {
  auto on = [&](const std::string &t) {
    return std::find(targets.begin(), targets.end(), t) != targets.end();
  };
  std::vector<ModelParam> ps = {{"model.embed_tokens.weight", {30, 8}, false},
                                {"model.norm.weight", {8}, false}};
  linear(ps, "lm_head", 30, 8, false, false);
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char *a : {"q_proj", "k_proj", "v_proj", "o_proj"})
      linear(ps, p + "self_attn." + a, 8, 8, on(a), false);
    linear(ps, p + "mlp.gate_proj", 16, 8, on("gate_proj"), false);
    linear(ps, p + "mlp.up_proj", 16, 8, on("up_proj"), false);
    linear(ps, p + "mlp.down_proj", 8, 16, on("down_proj"), false);
    ps.push_back({p + "input_layernorm.weight", {8}, false});
  }
  return ps;
}

// BART's layer linears (biases), one encoder and one decoder layer, LoRA on
// every attention projection (the decoder's cross-attention too, as Hugging
// Face PEFT's names reach it) and on fc1/fc2 when `ffn`; with `head`
// BartForSequenceClassification's classification_head, whose out_proj shares
// the attentions' name.
std::vector<ModelParam> bart(bool ffn, bool head) {
  std::vector<ModelParam> ps = {{"model.shared.weight", {30, 8}, false}};
  for (const char *side : {"encoder", "decoder"}) {
    const std::string p = std::string("model.") + side + ".layers.0.";
    std::vector<std::string> attns = {"self_attn"};
    if (std::string(side) == "decoder")
      attns.push_back("encoder_attn");
    for (const std::string &a : attns)
      for (const char *proj : {"q_proj", "k_proj", "v_proj", "out_proj"})
        linear(ps, p + a + "." + proj, 8, 8, true);
    linear(ps, p + "fc1", 16, 8, ffn);
    linear(ps, p + "fc2", 8, 16, ffn);
  }
  if (head) {
    ps.push_back({"classification_head.dense.weight", {8, 8}, true});
    ps.push_back({"classification_head.dense.bias", {8}, true});
    ps.push_back({"classification_head.out_proj.weight", {3, 8}, true});
    ps.push_back({"classification_head.out_proj.bias", {3}, true});
  }
  return ps;
}

using Names = std::vector<std::string>;

TEST(PeftAdapter, BertTargetsHeadAndTask) {
  auto info = peftPlanInfo(loraConfig(), bert({"query", "value"}), 1);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(peftTargetModules(*info), (Names{"query", "value"}));
  EXPECT_EQ(info->modulesToSave, (Names{"classifier"}));
  EXPECT_EQ(info->taskType, "SEQ_CLS");
  EXPECT_EQ(info->loraModules.size(), 4u);
  auto cfg = nlohmann::json::parse(peftAdapterConfig(*info));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 8);
  EXPECT_TRUE(cfg["lora_alpha"].is_number_integer());
  EXPECT_DOUBLE_EQ(cfg["lora_dropout"].get<double>(), 0.1);
  EXPECT_EQ(cfg["bias"], "none");
  EXPECT_EQ(cfg["modules_to_save"], nlohmann::json(Names{"classifier"}));
}

TEST(PeftAdapter, BertOutputDenseNeedsItsLayer) {
  // "output.dense" alone would also select the untargeted attention.output.
  auto info = peftPlanInfo(loraConfig(), bert({"output"}), 1);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(peftTargetModules(*info),
            (Names{"0.output.dense", "1.output.dense"}));
  // With both targeted, the shorter suffix is unambiguous; "dense" is not
  // (the pooler and intermediate end so).
  info = peftPlanInfo(loraConfig(), bert({"output", "attention_output"}), 1);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(peftTargetModules(*info), (Names{"output.dense"}));
}

TEST(PeftAdapter, LlamaCausalLm) {
  auto info = peftPlanInfo(loraConfig(R"(, "task": "causal_lm")"),
                           llama({"q_proj", "v_proj"}), 2);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(peftTargetModules(*info), (Names{"q_proj", "v_proj"}));
  EXPECT_TRUE(info->modulesToSave.empty());
  EXPECT_EQ(info->taskType, "CAUSAL_LM");
  auto cfg = nlohmann::json::parse(peftAdapterConfig(*info));
  EXPECT_TRUE(cfg["modules_to_save"].is_null());
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");

  const Names all = {"down_proj", "gate_proj", "k_proj", "o_proj",
                     "q_proj",    "up_proj",   "v_proj"};
  info = peftPlanInfo(loraConfig(), llama(all), 2);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(peftTargetModules(*info), all);
  // No task in the config and per-token labels: not a known PEFT task.
  EXPECT_EQ(info->taskType, "");
}

TEST(PeftAdapter, BartSeq2SeqAndClassification) {
  // One entry reaches the self- and the cross-attention's modules alike.
  auto info =
      peftPlanInfo(loraConfig(R"(, "task": "seq2seq")"), bart(true, false), 2);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(peftTargetModules(*info),
            (Names{"fc1", "fc2", "k_proj", "out_proj", "q_proj", "v_proj"}));
  EXPECT_EQ(info->loraModules.size(), 16u);
  EXPECT_TRUE(info->modulesToSave.empty());
  EXPECT_EQ(info->taskType, "SEQ_2_SEQ_LM");
  // classification_head.out_proj trains whole and has no LoRA: "out_proj"
  // would reach it, so each attention's out_proj is named by its attention.
  info = peftPlanInfo(loraConfig(R"(, "task": "classification")"),
                      bart(false, true), 1);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(peftTargetModules(*info),
            (Names{"encoder_attn.out_proj", "k_proj", "q_proj",
                   "self_attn.out_proj", "v_proj"}));
  EXPECT_EQ(info->modulesToSave, (Names{"classification_head.dense",
                                        "classification_head.out_proj"}));
  EXPECT_EQ(info->taskType, "SEQ_CLS");
}

TEST(PeftAdapter, RefusesAPlanWithoutLora) {
  auto info = peftPlanInfo(R"({"use_lora": false})", bert({}), 1);
  EXPECT_EQ(info.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(info.status().message().find("use_lora"), std::string::npos);
}

class AdapterFolder : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("galaxy-peft-adapter-test." + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto info = peftPlanInfo(loraConfig(R"(, "task": "causal_lm")"),
                             llama({"q_proj", "v_proj"}), 2);
    ASSERT_TRUE(info.ok()) << info.status();
    info_ = *info;
    // A galaxy-run save: every parameter, values = their index.
    std::vector<io::TensorToWrite> tensors;
    data_.reserve(info_.params.size());
    for (const ModelParam &p : info_.params) {
      int64_t n = 1;
      for (int64_t d : p.shape)
        n *= d;
      data_.emplace_back(n, float(data_.size()));
      tensors.push_back(
          {p.name, io::StDType::F32, p.shape, data_.back().data()});
    }
    ASSERT_TRUE(
        io::writeSafetensors((dir_ / "saved.safetensors").string(), tensors)
            .ok());
    ASSERT_TRUE(writePeftAdapter((dir_ / "saved.safetensors").string(), info_,
                                 adapter())
                    .ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string adapter() const { return (dir_ / "adapter").string(); }
  void editConfig(const std::function<void(nlohmann::json &)> &edit) {
    const fs::path p = dir_ / "adapter" / kAdapterConfigFile;
    std::ifstream in(p);
    nlohmann::json j = nlohmann::json::parse(in);
    edit(j);
    std::ofstream(p) << j.dump();
  }
  std::string refusal() {
    auto a = readPeftAdapter(adapter(), info_);
    return a.ok() ? std::string("(accepted)")
                  : std::string(a.status().message());
  }

  fs::path dir_;
  PeftPlanInfo info_;
  std::vector<std::vector<float>> data_;
};

TEST_F(AdapterFolder, WrittenFolderReadsBack) {
  auto a = readPeftAdapter(adapter(), info_);
  ASSERT_TRUE(a.ok()) << a.status();
  // Only the LoRA factors: nothing else trains in this plan.
  EXPECT_EQ(a->weights.tensors().size(), 8u);
  const io::TensorEntry *t = a->weights.find(
      "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{8, kR}));
  EXPECT_TRUE(a->warnings.empty());
  EXPECT_FALSE(fs::exists(dir_ / "adapter" / ".adapter_config.json.tmp"));
}

TEST_F(AdapterFolder, PeftSpellingsOfTargetsAreRead) {
  editConfig([](nlohmann::json &j) {
    j["target_modules"] = R"(.*\.(q_proj|v_proj))";
  });
  EXPECT_EQ(refusal(), "(accepted)");
  editConfig([](nlohmann::json &j) {
    j["target_modules"] =
        nlohmann::json::array({"model.layers.0.self_attn.q_proj", "v_proj",
                               "layers.1.self_attn.q_proj"});
  });
  EXPECT_EQ(refusal(), "(accepted)");
  editConfig([](nlohmann::json &j) { j["target_modules"] = "all-linear"; });
  EXPECT_EQ(refusal(), "(accepted)"); // left to the tensor checks
}

// PEFT LLaMA adapters trained with added tokens hold whole embed_tokens and
// lm_head (modules_to_save): read, but the plan trains neither, so say so.
TEST_F(AdapterFolder, FrozenModulesToSaveWarn) {
  const fs::path weights = dir_ / "adapter" / kAdapterWeightsFile;
  auto file = io::readSafetensors(weights.string());
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<io::TensorToWrite> tensors;
  for (const io::TensorEntry &t : file->tensors())
    tensors.push_back({t.name, t.dtype, t.shape, t.data});
  const std::vector<float> table(30 * 8, 0.5f);
  for (const char *name : {"model.embed_tokens.weight", "lm_head.weight"})
    tensors.push_back({std::string(kPeftPrefix) + name,
                       io::StDType::F32,
                       {30, 8},
                       table.data()});
  ASSERT_TRUE(io::writeSafetensors(weights.string(), tensors).ok());
  editConfig([](nlohmann::json &j) {
    j["modules_to_save"] = Names{"embed_tokens", "lm_head"};
  });
  auto a = readPeftAdapter(adapter(), info_);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->warnings.size(), 1u);
  EXPECT_NE(a->warnings[0].find("lm_head.weight, model.embed_tokens.weight"),
            std::string::npos)
      << a->warnings[0];
  EXPECT_NE(a->warnings[0].find("not trained"), std::string::npos);
}

TEST_F(AdapterFolder, Refusals) {
  editConfig([](nlohmann::json &j) { j["target_modules"] = "q_proj"; });
  EXPECT_NE(refusal().find("leave out modules the plan has LoRA on"),
            std::string::npos)
      << refusal();
  editConfig([](nlohmann::json &j) {
    j["target_modules"] = Names{"q_proj", "v_proj", "k_proj"};
  });
  EXPECT_NE(refusal().find("model.layers.0.self_attn.k_proj"),
            std::string::npos)
      << refusal();
  editConfig([](nlohmann::json &j) {
    j["target_modules"] = Names{"q_proj", "v_proj"};
    j["use_rslora"] = true;
  });
  EXPECT_NE(refusal().find("use_rslora"), std::string::npos) << refusal();
  editConfig([](nlohmann::json &j) {
    j["use_rslora"] = false;
    j["bias"] = "lora_only";
  });
  EXPECT_NE(refusal().find("bias is 'lora_only'"), std::string::npos)
      << refusal();
  editConfig([](nlohmann::json &j) {
    j["bias"] = "none";
    j["rank_pattern"] = {{"q_proj", 8}};
  });
  EXPECT_NE(refusal().find("rank_pattern"), std::string::npos) << refusal();
  editConfig([](nlohmann::json &j) {
    j["rank_pattern"] = nlohmann::json::object();
    j["peft_type"] = "IA3";
  });
  EXPECT_NE(refusal().find("LORA adapters only"), std::string::npos)
      << refusal();
  editConfig([](nlohmann::json &j) {
    j["peft_type"] = "LORA";
    j["fan_in_fan_out"] = true;
  });
  auto a = readPeftAdapter(adapter(), info_);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->warnings.size(), 1u);
  EXPECT_NE(a->warnings[0].find("fan_in_fan_out"), std::string::npos);
  fs::remove(dir_ / "adapter" / kAdapterWeightsFile);
  std::ofstream(dir_ / "adapter" / "adapter_model.bin") << "pickle";
  EXPECT_NE(refusal().find("safe_serialization=True"), std::string::npos)
      << refusal();
  fs::remove(dir_ / "adapter" / kAdapterConfigFile);
  EXPECT_NE(refusal().find("no adapter_config.json"), std::string::npos)
      << refusal();
}

} // namespace
} // namespace galaxy::rt
