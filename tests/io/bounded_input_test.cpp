// Inputs at the edges of their types (issue 19): ids near 2^31 and past
// int64, lines with no end (/dev/zero), vocabs missing a special token. Each
// is an error naming the file (and line), never a wrapped id or a crash.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/io/dataset.h"
#include "runtime/io/line_reader.h"
#include "runtime/io/wordpiece.h"
#include "tests/io/test_util.h"

namespace galaxy::io {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::writeFile;

DatasetOptions opts(int64_t vocab) {
  DatasetOptions o;
  o.padSize = 4;
  o.numClasses = 3;
  o.vocabSize = vocab;
  return o;
}

std::string loadError(const std::string &path, const DatasetOptions &o) {
  auto ds = Dataset::load(path, o);
  EXPECT_FALSE(ds.ok());
  return ds.ok() ? "" : std::string(ds.status().message());
}

// Finding 3: with vocab_size near 2^31 every i32 id is in range or refused;
// none wraps into another row (the old code cast an id >= 2^31 to i32).
TEST(BoundedInput, IdsNearTwoToTheThirtyOne) {
  TempDir dir;
  const int64_t vocab = 2147483647; // the largest vocab_size galaxyc accepts
  writeFile(dir.file("ok.jsonl"),
            "{\"input_ids\": [2147483646, 0], \"label\": 1}\n");
  auto ok = Dataset::load(dir.file("ok.jsonl"), opts(vocab));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->row(0).input_ids[0], 2147483646);

  for (const char *id : {"2147483647", "2147483648", "4294967298",
                         "9223372036854775807", "18446744073709551615"}) {
    writeFile(dir.file("big.jsonl"),
              "{\"input_ids\": [1], \"label\": 0}\n{\"input_ids\": [3, " +
                  std::string(id) + "], \"label\": 0}\n");
    EXPECT_THAT(loadError(dir.file("big.jsonl"), opts(vocab)),
                HasSubstr(dir.file("big.jsonl") + ":2: input_ids[1] = " + id +
                          " is outside [0, 2147483647)"));
  }
  writeFile(dir.file("neg.jsonl"),
            "{\"input_ids\": [-2147483649], \"label\": 0}\n");
  EXPECT_THAT(loadError(dir.file("neg.jsonl"), opts(vocab)),
              HasSubstr("neg.jsonl:1: input_ids[0] = -2147483649 is outside"));
  writeFile(dir.file("label.jsonl"),
            "{\"input_ids\": [1], \"label\": 18446744073709551615}\n");
  EXPECT_THAT(loadError(dir.file("label.jsonl"), opts(vocab)),
              HasSubstr("label.jsonl:1: label 18446744073709551615 is outside "
                        "[0, 3)"));
}

// A plan (hand-edited: galaxyc refuses it) with vocab_size past i32: the
// dataset refuses the bound itself rather than let ids past 2^31 through.
TEST(BoundedInput, BoundsPastI32AreRefused) {
  TempDir dir;
  writeFile(dir.file("d.jsonl"),
            "{\"input_ids\": [2147483648], \"label\": 0}\n");
  EXPECT_THAT(loadError(dir.file("d.jsonl"), opts(int64_t{1} << 62)),
              HasSubstr("vocab_size 4611686018427387904 does not fit 32-bit "
                        "ids (at most 2147483647)"));
  DatasetOptions o = opts(10);
  o.numClasses = int64_t{1} << 40;
  EXPECT_THAT(loadError(dir.file("d.jsonl"), o),
              HasSubstr("num_classes 1099511627776 does not fit"));
}

// Finding 7: /dev/zero has no newline; the reader stops at the line cap
// (the old reader grew one line until memory ran out: 17 GB read).
TEST(BoundedInput, DevZeroFailsFast) {
  TempDir dir;
  std::filesystem::create_symlink("/dev/zero", dir.file("zero.jsonl"));
  EXPECT_THAT(loadError(dir.file("zero.jsonl"), opts(10)),
              HasSubstr("zero.jsonl:1: the line is longer than 16777216 "
                        "bytes; is "));
  DatasetOptions tsv = opts(0);
  tsv.vocabPath = GALAXY_SOURCE_DIR "/configs/data/demo/vocab.txt";
  EXPECT_THAT(loadError("/dev/zero", tsv),
              HasSubstr("/dev/zero:1: the line is longer than"));
  tsv.vocabPath = "/dev/zero"; // the vocab itself
  writeFile(dir.file("d.tsv"), "hello\t1\n");
  EXPECT_THAT(loadError(dir.file("d.tsv"), tsv),
              HasSubstr("/dev/zero:1: the line is longer than"));
}

TEST(BoundedInput, LongLineNamesItsLine) {
  TempDir dir;
  writeFile(dir.file("d.tsv"), "a\t1\nbb\t1\n" + std::string(40, 'x') + "\n");
  std::ifstream in(dir.file("d.tsv"));
  std::string line;
  EXPECT_TRUE(*readLine(in, line, "d.tsv", 1, 16));
  EXPECT_EQ(line, "a\t1");
  EXPECT_TRUE(*readLine(in, line, "d.tsv", 2, 16));
  EXPECT_EQ(line, "bb\t1");
  auto third = readLine(in, line, "d.tsv", 3, 16);
  ASSERT_FALSE(third.ok());
  EXPECT_THAT(third.status().message(),
              HasSubstr("d.tsv:3: the line is longer than 16 bytes"));
}

TEST(BoundedInput, ReadLineKeepsGetlineSemantics) {
  TempDir dir;
  writeFile(dir.file("f"), "a\n\nb"); // an empty line; no final newline
  std::ifstream in(dir.file("f"));
  std::string line;
  std::vector<std::string> got;
  for (int64_t n = 1;; ++n) {
    auto more = readLine(in, line, "f", n);
    ASSERT_TRUE(more.ok());
    if (!*more)
      break;
    got.push_back(line);
  }
  EXPECT_THAT(got, ::testing::ElementsAre("a", "", "b"));
}

TEST(BoundedInput, ADirectoryIsNotData) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("d.jsonl"));
  EXPECT_THAT(loadError(dir.file("d.jsonl"), opts(10)),
              HasSubstr(dir.file("d.jsonl")));
}

// Finding 8: the message says a BERT vocab lists all five special tokens;
// now a vocab without [PAD] or [SEP] is refused as it says.
TEST(BoundedInput, VocabNeedsEverySpecialToken) {
  auto noSep = WordPieceTokenizer::fromTokens(
      {"[PAD]", "[UNK]", "[CLS]", "[MASK]", "hi"}, "v.txt");
  ASSERT_FALSE(noSep.ok());
  EXPECT_THAT(noSep.status().message(),
              HasSubstr("vocab v.txt lacks [SEP]: a BERT vocab must list "
                        "[PAD], [UNK], [CLS], [SEP], [MASK]"));
  auto noPadSep =
      WordPieceTokenizer::fromTokens({"[UNK]", "[CLS]", "[MASK]"}, "v.txt");
  ASSERT_FALSE(noPadSep.ok());
  EXPECT_THAT(noPadSep.status().message(), HasSubstr("lacks [PAD], [SEP]"));
  EXPECT_TRUE(WordPieceTokenizer::fromTokens(
                  {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}, "v.txt")
                  .ok());
}

} // namespace
} // namespace galaxy::io
