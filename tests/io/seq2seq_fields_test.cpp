// The batch fields of encoder-decoder (BART) data: shift_tokens_right, labels
// of their own length padded with -100, the decoder mask, num_targets over
// the global batch, eos_index, and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/io/dataset.h"
#include "tests/io/test_util.h"

namespace galaxy::io {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::writeFile;

constexpr int32_t X = kIgnoreIndex;

TEST(ShiftTokensRight, StartsWithTheDecoderStartAndReplacesIgnored) {
  // Hugging Face's shift_tokens_right(labels, pad 1, decoder_start 2).
  EXPECT_THAT(shiftTokensRight({0, 7, X, 2, X}, 1, 2),
              ElementsAre(2, 0, 7, 1, 2));
  EXPECT_THAT(shiftTokensRight({5}, 1, 2), ElementsAre(2));
  EXPECT_TRUE(shiftTokensRight({}, 1, 2).empty());
}

class Seq2SeqData : public testing::JsonlData {
protected:
  // BART's ids: pad 1, eos 2, decoder start 2; vocabulary 10; source 5,
  // target 4.
  DatasetOptions seq2seq() {
    DatasetOptions o;
    o.task = Task::kSeq2Seq;
    o.padSize = 5;
    o.targetPadSize = 4;
    o.vocabSize = 10;
    o.padId = 1;
    return o;
  }
  DatasetOptions classification() {
    DatasetOptions o;
    o.padSize = 5;
    o.vocabSize = 10;
    o.numClasses = 3;
    o.padId = 1;
    o.encoderDecoder = true;
    return o;
  }
};

TEST_F(Seq2SeqData, RowsAndBatchFields) {
  auto ds = load(
      // short target: padded with -100; the decoder mask ends at the last
      // position with a target
      "{\"input_ids\": [0, 5, 2], \"labels\": [0, 6, 2]}\n"
      // a -100 inside: fed as pad, still attended (Hugging Face's decoder
      // has no padding mask); a longer target is truncated
      "{\"input_ids\": [0, 5, 6, 7, 8, 2], \"labels\": [0, -100, 7, 8, 2]}\n",
      seq2seq());
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_THAT(ds->fieldNames(),
              ElementsAre("input_ids", "attention_mask", "decoder_input_ids",
                          "decoder_attention_mask", "labels", "num_targets"));
  const Row &a = ds->row(0), &b = ds->row(1);
  EXPECT_THAT(a.input_ids, ElementsAre(0, 5, 2, 1, 1));
  EXPECT_THAT(a.attention_mask, ElementsAre(1, 1, 1, 0, 0));
  EXPECT_THAT(a.labels, ElementsAre(0, 6, 2, X));
  EXPECT_THAT(a.decoder_input_ids, ElementsAre(2, 0, 6, 2));
  EXPECT_THAT(a.decoder_attention_mask, ElementsAre(1, 1, 1, 0));
  EXPECT_EQ(a.numTargets, 3);
  EXPECT_THAT(b.input_ids, ElementsAre(0, 5, 6, 7, 8));
  EXPECT_THAT(b.labels, ElementsAre(0, X, 7, 8));
  EXPECT_THAT(b.decoder_input_ids, ElementsAre(2, 0, 1, 7));
  EXPECT_THAT(b.decoder_attention_mask, ElementsAre(1, 1, 1, 1));
  EXPECT_EQ(b.numTargets, 3);

  // A data-parallel rank's part: its rows, the global batch's target count.
  Batch part = ds->rows(0, 2, 1, 1);
  EXPECT_THAT(part.ints("decoder_input_ids"), ElementsAre(2, 0, 1, 7));
  EXPECT_THAT(part.ints("labels"), ElementsAre(0, X, 7, 8));
  EXPECT_THAT(part.floats("num_targets"), ElementsAre(6.0f));
  EXPECT_EQ(part.find("token_type_ids"), nullptr);
}

TEST_F(Seq2SeqData, ClassificationDecodesTheShiftedIdsAndReadsTheLastEos) {
  auto ds = load("{\"input_ids\": [0, 2, 5, 2], \"label\": 1}\n"
                 "{\"input_ids\": [0, 5, 6, 7, 2], \"label\": 2}\n",
                 classification());
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_THAT(ds->fieldNames(),
              ElementsAre("input_ids", "attention_mask", "decoder_input_ids",
                          "decoder_attention_mask", "labels", "eos_index"));
  EXPECT_THAT(ds->row(0).decoder_input_ids, ElementsAre(2, 0, 2, 5, 2));
  EXPECT_THAT(ds->row(0).decoder_attention_mask, ElementsAre(1, 1, 1, 1, 1));
  EXPECT_EQ(ds->row(0).eosIndex, 3);
  EXPECT_EQ(ds->row(1).eosIndex, 4);
  Batch all = ds->batch(0, 2);
  EXPECT_THAT(all.ints("eos_index"), ElementsAre(3, 4));
  EXPECT_THAT(all.ints("labels"), ElementsAre(1, 2));
}

TEST_F(Seq2SeqData, Errors) {
  EXPECT_THAT(message(load("{\"input_ids\": [0, 5, 2]}\n", seq2seq())),
              HasSubstr("missing \"labels\""));
  EXPECT_THAT(
      message(load("{\"input_ids\": [0, 5], \"labels\": [12]}\n", seq2seq())),
      HasSubstr("labels[0] = 12 is outside [0, 10)"));
  // Truncated to pad_size, the row keeps no eos.
  EXPECT_THAT(
      message(load("{\"input_ids\": [0, 5, 6, 7, 8, 2], \"label\": 1}\n",
                   classification())),
      HasSubstr("input_ids hold no eos id 2 within pad_size 5"));
  EXPECT_THAT(message(Dataset::load(dir.file("d.tsv"), seq2seq())),
              HasSubstr("encoder-decoder data is .jsonl rows"));
}

} // namespace
} // namespace galaxy::io
