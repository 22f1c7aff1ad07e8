// An empty config is the prototype's BERT-base defaults and is valid serially.
#include "compiler/config/parse.h"
#include "compiler/config/validate.h"

#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

TEST(Defaults, EmptyObjectGivesPrototypeDefaults) {
  absl::StatusOr<GalaxyConfig> c = parseConfig("{}", "empty.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vocab_size, 21128);
  EXPECT_EQ(c->hidden_size, 768);
  EXPECT_EQ(c->num_hidden_layers, 12);
  EXPECT_EQ(c->num_attention_heads, 12);
  EXPECT_EQ(c->intermediate_size, 3072);
  EXPECT_EQ(c->max_position_embeddings, 512);
  EXPECT_EQ(c->type_vocab_size, 2);
  EXPECT_DOUBLE_EQ(c->hidden_dropout_prob, 0.1);
  EXPECT_DOUBLE_EQ(c->attention_probs_dropout_prob, 0.1);
  EXPECT_DOUBLE_EQ(c->layer_norm_eps, 1e-12);
  EXPECT_DOUBLE_EQ(c->initializer_range, 0.02);
  EXPECT_EQ(c->hidden_act, Activation::kGelu);
  EXPECT_EQ(c->num_classes, 10);
  EXPECT_EQ(c->pad_token_id, 0);
  EXPECT_EQ(c->model_type, "bert");
  EXPECT_EQ(c->batch_size, 4);
  EXPECT_EQ(c->pad_size, 32);
  EXPECT_DOUBLE_EQ(c->learning_rate, 5e-5);
  EXPECT_EQ(c->optimizer, Optimizer::kSgd);
  EXPECT_DOUBLE_EQ(c->weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(c->adam_beta1, 0.9);
  EXPECT_DOUBLE_EQ(c->adam_beta2, 0.999);
  EXPECT_DOUBLE_EQ(c->adam_epsilon, 1e-8);
  EXPECT_EQ(c->num_epochs, 3);
  EXPECT_EQ(c->seed, 42);
  EXPECT_EQ(c->dtype, DType::kF32);
  EXPECT_TRUE(c->full_model);
  EXPECT_FALSE(c->use_lora);
  EXPECT_EQ(c->lora_dim, 8);
  EXPECT_DOUBLE_EQ(c->lora_alpha, 32);
  EXPECT_DOUBLE_EQ(c->lora_dropout, 0.1);
  EXPECT_EQ(c->lora_target_modules,
            (std::vector<std::string>{"query", "value"}));
  EXPECT_FALSE(c->fan_in_fan_out);
  EXPECT_FALSE(c->merge_weights);
  EXPECT_FALSE(c->use_adapter);
  EXPECT_EQ(c->adapter_reduction_dim, 16);
  EXPECT_EQ(c->non_linearity, Activation::kGeluNew);
  EXPECT_FALSE(c->use_side);
  EXPECT_FALSE(c->use_side_only);
  EXPECT_EQ(c->side_reduction_factor, 8);
  EXPECT_EQ(c->parallel_mode, ParallelMode::kSerial);
  EXPECT_EQ(c->world_size, 0);
  EXPECT_TRUE(c->tp_num_attention_heads_list.empty());
  EXPECT_TRUE(c->seq_scatter_list.empty());
  EXPECT_EQ(c->att_parallel_method, BlockMethod::kTP);
  EXPECT_EQ(c->con_parallel_method, BlockMethod::kSP);
  EXPECT_EQ(c->mlp_parallel_method, BlockMethod::kTP);
  EXPECT_EQ(c->num_microbatches, 1);
  EXPECT_EQ(c->pp_schedule, PipelineSchedule::kGPipe);
  EXPECT_TRUE(c->warnings.empty());
  EXPECT_EQ(c->source, "empty.json");

  absl::StatusOr<GalaxyConfig> r = resolveConfig(*c, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->world_size, 1);
  EXPECT_EQ(*peftMethod(*r), PeftMethod::kFull);
}

TEST(Defaults, DefaultStructIsValidInEveryModeAtWorldTwo) {
  GalaxyConfig c;
  for (ParallelMode m :
       {ParallelMode::kDP, ParallelMode::kTP, ParallelMode::kSP,
        ParallelMode::kPP, ParallelMode::kGalaxy})
    EXPECT_TRUE(validate(c, m, 2).ok()) << validate(c, m, 2);
  EXPECT_TRUE(validate(c, ParallelMode::kSerial, 0).ok());
}

} // namespace
} // namespace galaxy::config
