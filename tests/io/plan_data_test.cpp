// What a plan asks of its data (runtime/io/plan_data.h).
#include "runtime/io/plan_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace galaxy::io {
namespace {

using ::testing::HasSubstr;

// A plan whose program `program` reads the inputs `inputs` (name, global
// shape), sliced like a data-parallel rank's.
plan::Plan planWith(
    const std::string &task,
    const std::vector<std::pair<std::string, std::vector<int64_t>>> &inputs,
    const std::string &program = "train_step") {
  plan::Plan p;
  plan::ModelInfo *m = p.mutable_model();
  m->set_model("llama");
  m->set_task(task);
  m->set_batch_size(4);
  m->set_seq_len(8);
  m->set_num_classes(3);
  m->set_vocab_size(100);
  m->set_pad_id(2);
  plan::Program *prog = p.add_programs();
  prog->set_name(program);
  for (const auto &[name, shape] : inputs) {
    plan::Buffer *b = p.add_buffers();
    b->set_id(p.buffers_size() - 1);
    b->set_kind(plan::Buffer::INPUT);
    b->set_input(name);
    for (size_t d = 0; d < shape.size(); ++d) {
      b->add_global_shape(shape[d]);
      b->add_shape(d == 0 ? shape[d] / 2 : shape[d]);
      b->add_slice_offset(0);
    }
    plan::Binding *in = prog->add_inputs();
    in->set_name(name);
    in->set_buffer(b->id());
  }
  return p;
}

TEST(PlanData, CausalLm) {
  auto o = datasetOptionsFor(planWith("causal_lm", {{"input_ids", {4, 8}},
                                                    {"attention_mask", {4, 8}},
                                                    {"labels", {4, 8}},
                                                    {"num_targets", {}}}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->task, Task::kCausalLm);
  EXPECT_EQ(o->padSize, 8);
  EXPECT_EQ(o->vocabSize, 100);
  EXPECT_EQ(o->padId, 2);
  EXPECT_FALSE(o->lastIndex);
}

TEST(PlanData, ClassificationAndLastIndex) {
  auto o = datasetOptionsFor(
      planWith("classification",
               {{"input_ids", {4, 8}}, {"labels", {4}}, {"last_index", {4}}}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->task, Task::kClassification);
  EXPECT_EQ(o->numClasses, 3);
  EXPECT_TRUE(o->lastIndex);
  // BERT's plans, and every plan written before the task field.
  auto bert = datasetOptionsFor(planWith("", {{"labels", {4}}}));
  ASSERT_TRUE(bert.ok()) << bert.status();
  EXPECT_EQ(bert->task, Task::kClassification);
  EXPECT_FALSE(bert->lastIndex);
}

// A pipeline's first stage reads no labels: the task still decides the rows.
TEST(PlanData, AStageWithoutLabelsKeepsItsTask) {
  auto o = datasetOptionsFor(
      planWith("causal_lm", {{"input_ids", {4, 8}}}, "train_fwd.b2"));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->task, Task::kCausalLm);
}

TEST(PlanData, InputsThatContradictTheTask) {
  auto msg = [](const plan::Plan &p) {
    auto o = datasetOptionsFor(p);
    EXPECT_FALSE(o.ok());
    return std::string(o.status().message());
  };
  EXPECT_THAT(msg(planWith("", {{"labels", {4, 8}}})),
              HasSubstr("reads labels of rank 2, but its task classification "
                        "has labels [batch]"));
  EXPECT_THAT(msg(planWith("causal_lm", {{"labels", {4}}})),
              HasSubstr("task causal_lm has labels [batch, seq]"));
  EXPECT_THAT(msg(planWith("classification", {{"num_targets", {}}})),
              HasSubstr("reads num_targets, which only causal_lm"));
  EXPECT_THAT(msg(planWith("causal_lm", {{"last_index", {4}}})),
              HasSubstr("reads last_index, which only classification"));
  EXPECT_THAT(msg(planWith("translation", {})),
              HasSubstr("the plan's task 'translation' is unknown"));
  EXPECT_THAT(msg(planWith("seq2seq", {{"eos_index", {4}}})),
              HasSubstr("reads eos_index, which only classification"));
  // Decoder inputs without the target length (a plan of an older galaxyc).
  EXPECT_THAT(msg(planWith("classification", {{"decoder_input_ids", {4, 8}}})),
              HasSubstr("reads decoder_input_ids but the plan has no "
                        "target_seq_len"));
}

// Encoder-decoder plans (BART): the data builds the decoder's inputs.
TEST(PlanData, EncoderDecoder) {
  plan::Plan p = planWith("seq2seq", {{"input_ids", {4, 8}},
                                      {"decoder_input_ids", {4, 6}},
                                      {"labels", {4, 6}},
                                      {"num_targets", {}}});
  p.mutable_model()->set_target_seq_len(6);
  p.mutable_model()->set_decoder_start_id(2);
  p.mutable_model()->set_eos_id(2);
  auto o = datasetOptionsFor(p);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->task, Task::kSeq2Seq);
  EXPECT_TRUE(o->encoderDecoder);
  EXPECT_EQ(o->targetPadSize, 6);
  EXPECT_EQ(o->decoderStartId, 2);
  // Classification reads decoder inputs too: encoder-decoder rows.
  plan::Plan c = planWith(
      "classification",
      {{"decoder_input_ids", {4, 8}}, {"labels", {4}}, {"eos_index", {4}}});
  c.mutable_model()->set_target_seq_len(8);
  auto oc = datasetOptionsFor(c);
  ASSERT_TRUE(oc.ok()) << oc.status();
  EXPECT_EQ(oc->task, Task::kClassification);
  EXPECT_TRUE(oc->encoderDecoder);
}

} // namespace
// Found with tests/fuzz (plan target; docs/reliability.md): galaxy-run reads
// the bindings here before the executor checks them, so an index past the
// buffers (or negative) used to reach Plan::buffers() unchecked.
TEST(PlanData, BindingToAMissingBufferIsAnError) {
  for (int32_t bad : {2, 1 << 20, -1}) {
    plan::Plan p =
        planWith("classification", {{"input_ids", {4, 8}}, {"labels", {4}}});
    p.mutable_programs(0)->mutable_inputs(1)->set_buffer(bad);
    auto o = datasetOptionsFor(p);
    ASSERT_FALSE(o.ok()) << bad;
    EXPECT_THAT(o.status().message(),
                HasSubstr("binds input 'labels' to buffer " +
                          std::to_string(bad) +
                          ", but the plan has 2 buffers"));
  }
}

} // namespace galaxy::io
