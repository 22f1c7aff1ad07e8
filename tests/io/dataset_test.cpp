#include "runtime/io/dataset.h"

#include <algorithm>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "runtime/io/wordpiece.h"
#include "tests/io/test_util.h"

namespace galaxy::io {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::writeFile;

const std::string kDemo = GALAXY_SOURCE_DIR "/configs/data/demo/";

DatasetOptions demoOptions() {
  DatasetOptions o;
  o.padSize = 32;
  o.numClasses = 10;
  o.vocabPath = kDemo + "vocab.txt";
  return o;
}

TEST(Dataset, LoadsTheDemoTsv) {
  auto ds = Dataset::load(kDemo + "train.tsv", demoOptions());
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->size(), 2000);
  EXPECT_EQ(ds->padSize(), 32);
  std::set<int> labels;
  for (int64_t i = 0; i < ds->size(); ++i) {
    const Row &r = ds->row(i);
    ASSERT_EQ(r.input_ids.size(), 32u);
    EXPECT_EQ(r.input_ids[0], 2); // [CLS]
    labels.insert(r.label);
    for (int s = 0; s < 32; ++s)
      EXPECT_EQ(r.attention_mask[s], r.input_ids[s] != 0 ? 1.0f : 0.0f);
  }
  EXPECT_EQ(labels.size(), 10u);
  auto dev = Dataset::load(kDemo + "dev.tsv", demoOptions());
  ASSERT_TRUE(dev.ok()) << dev.status();
  EXPECT_EQ(dev->size(), 200);
}

// train.jsonl was tokenized by scripts/make_demo_data.py's own Python
// tokenizer: the C++ tokenizer must agree with it on the same sentences.
TEST(Dataset, DemoJsonlMatchesTokenizedTsv) {
  auto tsv = Dataset::load(kDemo + "train.tsv", demoOptions());
  DatasetOptions o = demoOptions();
  o.vocabSize = 285;
  auto jsonl = Dataset::load(kDemo + "train.jsonl", o);
  ASSERT_TRUE(tsv.ok()) << tsv.status();
  ASSERT_TRUE(jsonl.ok()) << jsonl.status();
  ASSERT_EQ(jsonl->size(), 64);
  for (int64_t i = 0; i < 64; ++i) {
    EXPECT_EQ(jsonl->row(i).input_ids, tsv->row(i).input_ids) << "row " << i;
    EXPECT_EQ(jsonl->row(i).attention_mask, tsv->row(i).attention_mask)
        << "row " << i;
    EXPECT_EQ(jsonl->row(i).token_type_ids, tsv->row(i).token_type_ids)
        << "row " << i;
    EXPECT_EQ(jsonl->row(i).label, tsv->row(i).label) << "row " << i;
  }
}

class DatasetFiles : public ::testing::Test {
protected:
  // Loads `content` written to a file named `name`; small vocab, pad 4, 3
  // classes.
  absl::StatusOr<Dataset> load(const std::string &name,
                               const std::string &content) {
    writeFile(dir.file(name), content);
    return Dataset::load(dir.file(name), options());
  }
  DatasetOptions options() {
    writeFile(dir.file("vocab.txt"),
              "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n");
    DatasetOptions o;
    o.padSize = 4;
    o.numClasses = 3;
    o.vocabSize = 7;
    o.vocabPath = dir.file("vocab.txt");
    return o;
  }
  std::string message(const absl::StatusOr<Dataset> &ds) {
    EXPECT_FALSE(ds.ok());
    return std::string(ds.status().message());
  }
  TempDir dir;
};

TEST_F(DatasetFiles, TsvRows) {
  auto ds =
      load("d.tsv", "Hello world\t2\n\n  \nhello there world again\t0\r\n");
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ(ds->size(), 2);
  EXPECT_THAT(ds->row(0).input_ids, ElementsAre(2, 5, 6, 0));
  EXPECT_THAT(ds->row(0).attention_mask, ElementsAre(1, 1, 1, 0));
  EXPECT_EQ(ds->row(0).label, 2);
  EXPECT_THAT(ds->row(1).input_ids,
              ElementsAre(2, 5, 1, 6)); // truncated to pad 4
  EXPECT_THAT(ds->row(1).attention_mask, ElementsAre(1, 1, 1, 1));
}

TEST_F(DatasetFiles, TsvErrorsNameFileAndLine) {
  const std::string f = dir.file("d.tsv");
  EXPECT_THAT(message(load("d.tsv", "hello\t1\nno tab here\n")),
              HasSubstr(f + ":2: no tab"));
  EXPECT_THAT(message(load("d.tsv", "hello\tone\n")),
              HasSubstr(f + ":1: label 'one' is not an integer"));
  EXPECT_THAT(message(load("d.tsv", "hello\t1.5\n")),
              HasSubstr("'1.5' is not an integer"));
  EXPECT_THAT(message(load("d.tsv", "\nhello\t3\n")),
              HasSubstr(f + ":2: label 3 is outside [0, 3)"));
  EXPECT_THAT(message(load("d.tsv", "hello\t-1\n")),
              HasSubstr(f + ":1: label -1 is outside"));
  EXPECT_THAT(message(load("d.tsv", "\n\n")), HasSubstr("holds no rows"));
  auto missing = Dataset::load(dir.file("absent.tsv"), options());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("absent.tsv"));

  DatasetOptions noVocab = options();
  noVocab.vocabPath.clear();
  writeFile(f, "hello\t1\n");
  EXPECT_THAT(message(Dataset::load(f, noVocab)),
              HasSubstr("needs a vocab.txt"));
  DatasetOptions smallModel = options();
  smallModel.vocabSize = 6; // "world" has id 6
  writeFile(f, "hello\t1\nworld\t0\n");
  EXPECT_THAT(
      message(Dataset::load(f, smallModel)),
      HasSubstr(
          f + ":2: token 'world' has id 6, outside the model's vocab_size 6"));
  DatasetOptions noClasses = options();
  noClasses.numClasses = 0;
  EXPECT_THAT(message(Dataset::load(f, noClasses)),
              HasSubstr("num_classes must be > 0"));
}

TEST_F(DatasetFiles, JsonlRowsPadTruncateAndDefault) {
  auto ds = load(
      "d.jsonl",
      R"({"input_ids": [2, 5], "label": 1})"
      "\n\n"
      R"({"input_ids": [2, 5, 6, 6, 6, 6], "attention_mask": [1, 1, 1, 1, 0, 0], )"
      R"("token_type_ids": [0, 0, 1, 1, 1, 1], "label": 0})"
      "\n"
      R"({"input_ids": [2, 6, 0], "attention_mask": [1, 1, 0], "label": 2})");
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ(ds->size(), 3);
  EXPECT_THAT(ds->row(0).input_ids, ElementsAre(2, 5, 0, 0));
  EXPECT_THAT(ds->row(0).attention_mask, ElementsAre(1, 1, 0, 0));
  EXPECT_THAT(ds->row(0).token_type_ids, ElementsAre(0, 0, 0, 0));
  EXPECT_THAT(ds->row(1).input_ids, ElementsAre(2, 5, 6, 6));
  EXPECT_THAT(ds->row(1).token_type_ids, ElementsAre(0, 0, 1, 1));
  EXPECT_THAT(ds->row(2).attention_mask, ElementsAre(1, 1, 0, 0));
  EXPECT_EQ(ds->row(2).label, 2);
}

TEST_F(DatasetFiles, JsonlErrorsNameFileAndLine) {
  const std::string f = dir.file("d.jsonl");
  const std::string ok = R"({"input_ids": [2, 5], "label": 1})"
                         "\n";
  EXPECT_THAT(message(load("d.jsonl", ok + "{oops\n")),
              HasSubstr(f + ":2: not a JSON object"));
  EXPECT_THAT(
      message(load("d.jsonl", ok + R"({"input_ids": [2, 7], "label": 1})")),
      HasSubstr(f + ":2: input_ids[1] = 7 is outside [0, 7)"));
  EXPECT_THAT(message(load("d.jsonl", R"({"input_ids": [-1], "label": 1})")),
              HasSubstr(f + ":1: input_ids[0] = -1 is outside"));
  EXPECT_THAT(
      message(load("d.jsonl", R"({"input_ids": [2, "x"], "label": 1})")),
      HasSubstr("input_ids[1] = \"x\" is not an integer"));
  EXPECT_THAT(message(load("d.jsonl", R"({"label": 1})")),
              HasSubstr(f + ":1: missing \"input_ids\""));
  EXPECT_THAT(message(load("d.jsonl", R"({"input_ids": [2]})")),
              HasSubstr(f + ":1: \"label\" is missing"));
  EXPECT_THAT(message(load("d.jsonl", R"({"input_ids": [2], "label": 3})")),
              HasSubstr(f + ":1: label 3 is outside [0, 3)"));
  EXPECT_THAT(message(load("d.jsonl", R"({"input_ids": [2], "label": -2})")),
              HasSubstr("label -2 is outside"));
  EXPECT_THAT(
      message(
          load("d.jsonl",
               R"({"input_ids": [2, 5], "attention_mask": [1], "label": 0})")),
      HasSubstr(f + ":1: attention_mask has 1 entries, input_ids 2"));
  EXPECT_THAT(
      message(load("d.jsonl",
                   R"({"input_ids": [2], "attention_mask": [2], "label": 0})")),
      HasSubstr("attention_mask[0] = 2 is outside [0, 2)"));
  EXPECT_THAT(
      message(load("d.jsonl",
                   R"({"input_ids": [2], "token_type_ids": [5], "label": 0})")),
      HasSubstr("token_type_ids[0] = 5 is outside [0, 2)"));
  EXPECT_THAT(message(load("d.jsonl", "\n \n")), HasSubstr("holds no rows"));
  auto missing = Dataset::load(dir.file("absent.jsonl"), options());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

// Five rows; row i has label i % 3 and input id 2 + i (unique per row).
Dataset fiveRows(TempDir &dir) {
  std::string content;
  for (int i = 0; i < 5; ++i)
    content += absl::StrCat(R"({"input_ids": [)", 2 + i, R"(], "label": )",
                            i % 3, "}\n");
  writeFile(dir.file("five.jsonl"), content);
  DatasetOptions o;
  o.padSize = 2;
  o.numClasses = 3;
  o.vocabSize = 10;
  auto ds = Dataset::load(dir.file("five.jsonl"), o);
  EXPECT_TRUE(ds.ok()) << ds.status();
  return std::move(*ds);
}

// Which rows (0..4) a batch holds, from their unique ids.
std::vector<int> rowsOf(const Batch &b) {
  std::vector<int> out;
  for (int64_t i = 0; i < b.size; ++i)
    out.push_back(b.ints("input_ids")[i * b.seqLen] - 2);
  return out;
}

TEST(Batching, FileOrderWrapsAround) {
  TempDir dir;
  Dataset ds = fiveRows(dir);
  Batch b0 = ds.batch(0, 2);
  EXPECT_EQ(b0.size, 2);
  EXPECT_EQ(b0.seqLen, 2);
  EXPECT_THAT(b0.ints("input_ids"), ElementsAre(2, 0, 3, 0));
  EXPECT_THAT(b0.floats("attention_mask"), ElementsAre(1, 0, 1, 0));
  EXPECT_THAT(b0.ints("token_type_ids"), ElementsAre(0, 0, 0, 0));
  EXPECT_THAT(b0.ints("labels"), ElementsAre(0, 1));
  EXPECT_THAT(rowsOf(ds.batch(2, 2)), ElementsAre(4, 0));
  EXPECT_THAT(rowsOf(ds.batch(1, 3)), ElementsAre(3, 4, 0));
  EXPECT_THAT(ds.batch(1, 3).ints("labels"), ElementsAre(0, 1, 0));
  EXPECT_THAT(rowsOf(ds.batch(0, 12)),
              ElementsAre(0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1));
}

TEST(Batching, RowsAreSlicesOfTheGlobalBatch) {
  TempDir dir;
  Dataset ds = fiveRows(dir);
  for (bool shuffle : {false, true}) {
    if (shuffle)
      ds.setShuffle(7);
    for (int64_t step = 0; step < 6; ++step) {
      const std::vector<int> global = rowsOf(ds.batch(step, 4));
      Batch part = ds.rows(step, 4, 1, 2);
      EXPECT_EQ(part.size, 2);
      EXPECT_EQ(part.ints("input_ids").size(), 4u);
      EXPECT_EQ(part.ints("labels").size(), 2u);
      EXPECT_THAT(rowsOf(part), ElementsAre(global[1], global[2]))
          << "step " << step;
      EXPECT_EQ(rowsOf(ds.rows(step, 4, 3, 0)).size(), 0u);
    }
  }
}

TEST(Batching, ShuffleIsDeterministicAndPermutesEachEpoch) {
  TempDir dir;
  Dataset a = fiveRows(dir), b = fiveRows(dir), c = fiveRows(dir);
  a.setShuffle(42);
  b.setShuffle(42);
  c.setShuffle(43);
  std::vector<int> sa, sb, sc;
  for (int64_t step = 0; step < 10;
       ++step) { // 10 steps × 3 rows = 6 epochs of 5
    for (int r : rowsOf(a.batch(step, 3)))
      sa.push_back(r);
    for (int r : rowsOf(b.batch(step, 3)))
      sb.push_back(r);
    for (int r : rowsOf(c.batch(step, 3)))
      sc.push_back(r);
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  std::set<std::vector<int>> epochs;
  for (int e = 0; e < 6; ++e) {
    std::vector<int> epoch(sa.begin() + 5 * e, sa.begin() + 5 * e + 5);
    epochs.insert(epoch);
    std::sort(epoch.begin(), epoch.end());
    EXPECT_THAT(epoch, ElementsAre(0, 1, 2, 3, 4)) << "epoch " << e;
  }
  EXPECT_GT(epochs.size(), 1u); // epochs are shuffled differently
  a.clearShuffle();
  EXPECT_THAT(rowsOf(a.batch(0, 5)), ElementsAre(0, 1, 2, 3, 4));
}

TEST(Batching, PermutationIsPinned) {
  // Our own Fisher–Yates over std::mt19937_64 (whose output the standard
  // fixes): these values must not change with the compiler or standard library.
  EXPECT_EQ(Dataset::permutation(10, 42, 0), Dataset::permutation(10, 42, 0));
  EXPECT_EQ(Dataset::permutation(10, 41, 1),
            Dataset::permutation(10, 42, 0)); // seed + epoch
  EXPECT_NE(Dataset::permutation(10, 42, 0), Dataset::permutation(10, 42, 1));
  // Cross-checked against an independent Python MT19937-64 + Fisher-Yates.
  EXPECT_THAT(Dataset::permutation(10, 42, 0),
              ElementsAre(1, 7, 9, 0, 3, 8, 4, 2, 5, 6));
  EXPECT_THAT(Dataset::permutation(1, 5, 0), ElementsAre(0));
}

} // namespace
} // namespace galaxy::io
