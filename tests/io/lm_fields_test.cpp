// The batch fields of causal-LM and LLaMA-classification data: shifted labels,
// padding, -100, num_targets over the global batch, last_index, and a
// data-parallel rank's part of a batch.
#include <algorithm>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/io/dataset.h"
#include "tests/io/test_util.h"

namespace galaxy::io {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::writeFile;

constexpr int32_t X = kIgnoreIndex;

TEST(CausalTargets, ShiftsAndIgnoresPadding) {
  EXPECT_THAT(causalTargets({5, 6, 7, 8}, {1, 1, 1, 1}),
              ElementsAre(6, 7, 8, X));
  // Position s + 1 padding: no target at s, wherever the padding is.
  EXPECT_THAT(causalTargets({5, 6, 7, 8, 9}, {1, 1, 0, 1, 0}),
              ElementsAre(6, X, 8, X, X));
  // A given -100 stays ignored.
  EXPECT_THAT(causalTargets({X, X, 7, 8}, {1, 1, 1, 1}),
              ElementsAre(X, 7, 8, X));
  EXPECT_THAT(causalTargets({4}, {1}), ElementsAre(X));
  EXPECT_TRUE(causalTargets({}, {}).empty());
}

class LmData : public testing::JsonlData {
protected:
  // Vocabulary 10, pad_size 5, pad id 0.
  DatasetOptions causal() {
    DatasetOptions o;
    o.task = Task::kCausalLm;
    o.padSize = 5;
    o.vocabSize = 10;
    o.numClasses = 0; // unused by causal-LM data
    return o;
  }
  DatasetOptions classification() {
    DatasetOptions o;
    o.padSize = 5;
    o.vocabSize = 10;
    o.numClasses = 3;
    o.lastIndex = true;
    return o;
  }
};

TEST_F(LmData, CausalRowsArePaddedAndShifted) {
  auto ds = load(
      // short row: padded with the pad id, mask 0, no target from padding
      "{\"input_ids\": [5, 6, 7]}\n"
      // a mask 0 inside the row: no target there
      "{\"input_ids\": [5, 6, 7, 8], \"attention_mask\": [1, 1, 0, 1]}\n"
      // given labels, -100 among them
      "{\"input_ids\": [5, 6, 7, 8], \"labels\": [-100, -100, 7, 9]}\n"
      // exactly pad_size: the last position has no target
      "{\"input_ids\": [1, 2, 3, 4, 5]}\n"
      // longer than pad_size: truncated (as BERT's JSONL rows are), so the
      // last kept position has no target either
      "{\"input_ids\": [1, 2, 3, 4, 5, 6, 7], \"label\": 99}\n",
      causal());
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ(ds->size(), 5);
  EXPECT_THAT(ds->row(0).input_ids, ElementsAre(5, 6, 7, 0, 0));
  EXPECT_THAT(ds->row(0).attention_mask, ElementsAre(1, 1, 1, 0, 0));
  EXPECT_THAT(ds->row(0).labels, ElementsAre(6, 7, X, X, X));
  EXPECT_EQ(ds->row(0).numTargets, 2);
  EXPECT_THAT(ds->row(1).labels, ElementsAre(6, X, 8, X, X));
  EXPECT_EQ(ds->row(1).numTargets, 2);
  EXPECT_THAT(ds->row(2).labels, ElementsAre(X, 7, 9, X, X));
  EXPECT_EQ(ds->row(2).numTargets, 2);
  EXPECT_THAT(ds->row(3).labels, ElementsAre(2, 3, 4, 5, X));
  EXPECT_EQ(ds->row(3).numTargets, 4);
  EXPECT_THAT(ds->row(4).input_ids, ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(ds->row(4).labels, ElementsAre(2, 3, 4, 5, X));
}

TEST_F(LmData, PadsWithThePadId) {
  DatasetOptions o = causal();
  o.padId = 3;
  auto ds = load("{\"input_ids\": [5, 3]}\n", o);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_THAT(ds->row(0).input_ids, ElementsAre(5, 3, 3, 3, 3));
  // The second 3 is a real token (mask 1): it is a target.
  EXPECT_THAT(ds->row(0).labels, ElementsAre(3, X, X, X, X));
  o.padId = 10;
  EXPECT_THAT(message(load("{\"input_ids\": [5]}\n", o)),
              HasSubstr("pad_token_id 10 is outside [0, vocab_size 10)"));
  o.padId = -1;
  EXPECT_THAT(message(load("{\"input_ids\": [5]}\n", o)),
              HasSubstr("pad_token_id -1 is outside"));
}

TEST_F(LmData, CausalBatchFields) {
  auto ds = load("{\"input_ids\": [5, 6, 7]}\n"       // 2 targets
                 "{\"input_ids\": [1, 2, 3, 4, 5]}\n" // 4 targets
                 "{\"input_ids\": [9, 8]}\n",         // 1 target
                 causal());
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_THAT(ds->fieldNames(), ElementsAre("input_ids", "attention_mask",
                                            "labels", "num_targets"));
  Batch b = ds->batch(0, 2);
  std::set<std::string> names;
  for (const auto &[name, f] : b.fields)
    names.insert(name);
  EXPECT_THAT(names, ElementsAre("attention_mask", "input_ids", "labels",
                                 "num_targets"));
  EXPECT_EQ(b.ints("labels").size(), 10u); // [B, S]
  EXPECT_THAT(b.ints("labels"), ElementsAre(6, 7, X, X, X, 2, 3, 4, 5, X));
  ASSERT_NE(b.find("num_targets"), nullptr);
  EXPECT_FALSE(b.find("num_targets")->isInt);
  EXPECT_THAT(b.floats("num_targets"), ElementsAre(6.0f));
  // Batch 1 wraps: rows 2 and 0.
  EXPECT_THAT(ds->batch(1, 2).floats("num_targets"), ElementsAre(3.0f));
}

// A data-parallel rank's rows are exactly its rows of the global batch, and
// num_targets still counts the global batch (the loss is its mean).
TEST_F(LmData, DataParallelPartKeepsTheGlobalTargetCount) {
  std::string rows;
  for (int r = 0; r < 7; ++r) {
    rows += "{\"input_ids\": [";
    for (int i = 0; i <= r % 5; ++i)
      rows += (i ? ", " : "") + std::to_string(1 + (r + i) % 9);
    rows += "]}\n";
  }
  auto ds = load(rows, causal());
  ASSERT_TRUE(ds.ok()) << ds.status();
  ds->setShuffle(7);
  const int64_t B = 4, S = 5;
  for (int64_t step = 0; step < 4; ++step) {
    Batch global = ds->batch(step, B);
    float targets = 0;
    for (int64_t i = 0; i < B; ++i)
      targets += ds->row(ds->rowIndex(step, B, i)).numTargets;
    ASSERT_THAT(global.floats("num_targets"), ElementsAre(targets));
    for (auto [begin, count] :
         {std::pair<int64_t, int64_t>{0, 2}, {2, 2}, {1, 3}, {3, 1}, {2, 0}}) {
      Batch part = ds->rows(step, B, begin, count);
      EXPECT_EQ(part.size, count);
      EXPECT_THAT(part.floats("num_targets"), ElementsAre(targets))
          << "step " << step << " rows " << begin << "+" << count;
      auto slice = [&](const std::vector<int32_t> &v) {
        return std::vector<int32_t>(v.begin() + begin * S,
                                    v.begin() + (begin + count) * S);
      };
      EXPECT_EQ(part.ints("labels"), slice(global.ints("labels")));
      EXPECT_EQ(part.ints("input_ids"), slice(global.ints("input_ids")));
    }
  }
}

TEST_F(LmData, CausalRowErrorsNameFileLineAndKey) {
  const std::string f = dir.file("d.jsonl");
  EXPECT_THAT(
      message(load("{\"input_ids\": [1]}\n{\"text_ids\": [1]}\n", causal())),
      HasSubstr(f + ":2: missing \"input_ids\""));
  EXPECT_THAT(message(load("{\"input_ids\": [1, 10]}\n", causal())),
              HasSubstr(f + ":1: input_ids[1] = 10 is outside [0, 10)"));
  EXPECT_THAT(
      message(load("{\"input_ids\": [1, 2], \"labels\": [1, -1]}\n", causal())),
      HasSubstr(f + ":1: labels[1] = -1 is outside [0, 10) (or -100"));
  EXPECT_THAT(
      message(load("{\"input_ids\": [1, 2], \"labels\": [10, 2]}\n", causal())),
      HasSubstr(f + ":1: labels[0] = 10 is outside"));
  EXPECT_THAT(
      message(load("{\"input_ids\": [1, 2], \"labels\": [1]}\n", causal())),
      HasSubstr(f + ":1: labels has 1 entries, input_ids 2"));
  EXPECT_THAT(
      message(load("{\"input_ids\": [1, 2], \"labels\": 3}\n", causal())),
      HasSubstr(f + ":1: \"labels\" is not an array"));
  EXPECT_THAT(message(load("{\"text\": \"hi\"}\n", causal())),
              HasSubstr(f + ":1: missing \"input_ids\": a \"text\" row needs "
                            "the model's tokenizer (galaxy-run --tokenizer"));
  writeFile(dir.file("d.tsv"), "hello\t1\n");
  EXPECT_THAT(message(Dataset::load(dir.file("d.tsv"), causal())),
              HasSubstr("causal-LM data is .jsonl rows"));
}

TEST_F(LmData, ClassificationLastIndex) {
  auto ds = load("{\"input_ids\": [5, 6], \"label\": 2}\n"
                 "{\"input_ids\": [5, 6, 7, 8, 9], \"label\": 0}\n"
                 // a pad id inside the row: the last non-pad position counts
                 "{\"input_ids\": [0, 4, 0], \"label\": 1}\n"
                 // nothing but pad ids: 0, as Hugging Face's argmax gives
                 "{\"input_ids\": [0, 0], \"label\": 1}\n",
                 classification());
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_THAT(ds->fieldNames(),
              ElementsAre("input_ids", "attention_mask", "token_type_ids",
                          "labels", "last_index"));
  Batch b = ds->batch(0, 4);
  EXPECT_THAT(b.ints("last_index"), ElementsAre(1, 4, 1, 0));
  EXPECT_THAT(b.ints("labels"), ElementsAre(2, 0, 1, 1));
  EXPECT_TRUE(b.find("num_targets") == nullptr);
  // A rank's part: its rows' last_index.
  EXPECT_THAT(ds->rows(0, 4, 1, 2).ints("last_index"), ElementsAre(4, 1));

  // The pad id decides what padding is.
  DatasetOptions o = classification();
  o.padId = 9;
  auto nine = load("{\"input_ids\": [5, 6, 9], \"label\": 2}\n", o);
  ASSERT_TRUE(nine.ok()) << nine.status();
  EXPECT_THAT(nine->row(0).input_ids, ElementsAre(5, 6, 9, 9, 9));
  EXPECT_EQ(nine->row(0).lastIndex, 1);
}

// BERT's batches are what they were: four fields, no last_index, labels [B].
TEST_F(LmData, ClassificationWithoutLastIndexKeepsTheTextFields) {
  DatasetOptions o = classification();
  o.lastIndex = false;
  auto ds = load("{\"input_ids\": [5, 6], \"label\": 2}\n", o);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->fieldNames(), textFields());
  Batch b = ds->batch(0, 2);
  std::vector<std::string> names;
  for (const auto &[name, f] : b.fields)
    names.push_back(name);
  EXPECT_THAT(names, ElementsAre("attention_mask", "input_ids", "labels",
                                 "token_type_ids"));
  EXPECT_THAT(b.ints("labels"), ElementsAre(2, 2));
  // "labels" arrays mean nothing to classification rows (as before).
  EXPECT_TRUE(
      load("{\"input_ids\": [5], \"labels\": [77], \"label\": 1}\n", o).ok());
}

} // namespace
} // namespace galaxy::io
