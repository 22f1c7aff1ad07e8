// The byte-level BPE tokenizer on a hand-built vocabulary (no Hugging Face
// needed; bpe_hf_check.py compares a trained one with tokenizers): the byte
// map, merges by rank, special tokens, truncation, decoding, the refusals,
// and BART "text" / "target_text" rows of a dataset.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "runtime/io/bpe.h"
#include "runtime/io/dataset.h"
#include "runtime/io/text_tokenizer.h"
#include "tests/io/test_util.h"
#include <nlohmann/json.hpp>

namespace galaxy::io {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::writeFile;

TEST(ByteToUnicode, IsGpt2sReversibleMap) {
  const std::vector<std::string> &m = byteToUnicode();
  EXPECT_EQ(std::set<std::string>(m.begin(), m.end()).size(), 256u);
  EXPECT_EQ(m['a'], "a");
  EXPECT_EQ(m[' '], "\xC4\xA0");  // U+0120 'Ġ'
  EXPECT_EQ(m['\n'], "\xC4\x8A"); // U+010A 'Ċ'
  EXPECT_EQ(m[0xE9], "\xC3\xA9"); // é stands for itself
}

// <s> 0, <pad> 1, </s> 2, <unk> 3, <mask> 4, the 256 bytes from 5, then the
// merged tokens.
class Bpe : public ::testing::Test {
protected:
  void SetUp() override {
    nlohmann::json vocab;
    for (const char *s : {"<s>", "<pad>", "</s>", "<unk>", "<mask>"})
      vocab[s] = int(vocab.size());
    for (const std::string &b : byteToUnicode())
      vocab[b] = int(vocab.size());
    // Ranks: "l o" before "h e" before "he l"; "Ġ w" last.
    merges = {"l o", "h e", "he l", "hel lo", "Ġ w", "Ġw o"};
    for (const std::string &m : merges) {
      const std::string t =
          m.substr(0, m.find(' ')) + m.substr(m.find(' ') + 1);
      vocab[t] = int(vocab.size());
    }
    ids = vocab;
    writeFile(dir.file("vocab.json"), vocab.dump());
    std::string txt = "#version: 0.2\n";
    for (const std::string &m : merges)
      txt += m + "\n";
    writeFile(dir.file("merges.txt"), txt);
  }
  int32_t id(const std::string &t) { return ids.at(t).get<int32_t>(); }
  ByteLevelBpeTokenizer tok() {
    auto t = ByteLevelBpeTokenizer::fromPath(dir.path());
    EXPECT_TRUE(t.ok()) << t.status();
    return std::move(*t);
  }

  TempDir dir;
  std::vector<std::string> merges;
  nlohmann::json ids;
};

TEST_F(Bpe, MergesByRankAndWrapsInSpecials) {
  ByteLevelBpeTokenizer t = tok();
  EXPECT_EQ(t.vocabSize(), 5 + 256 + 6);
  // "hello": l o -> lo, h e -> he, he l -> hel, hel lo -> hello.
  EXPECT_THAT(*t.pieces("hello"), ElementsAre(id("hello")));
  // " wo" is a word of its own (the space joins it); "rld" has no merges.
  EXPECT_THAT(*t.pieces("hello world"),
              ElementsAre(id("hello"), id("Ġwo"), id("r"), id("l"), id("d")));
  EXPECT_THAT(*t.encode("hello", 100), ElementsAre(0, id("hello"), 2));
  // Truncation keeps <s> and </s>.
  EXPECT_THAT(*t.encode("hello world", 4),
              ElementsAre(0, id("hello"), id("Ġwo"), 2));
  // Special tokens split out; <mask> takes the space before it.
  EXPECT_THAT(*t.pieces("hello <mask></s>"), ElementsAre(id("hello"), 4, 2));
  EXPECT_EQ(t.decode(*t.encode("hello <mask> wo", 100), false),
            "<s>hello<mask> wo</s>");
  EXPECT_EQ(t.decode(*t.encode("héllo 😀", 100), true), "héllo 😀");
}

TEST_F(Bpe, DecodesInvalidUtf8AsReplacementCharacters) {
  ByteLevelBpeTokenizer t = tok();
  // The first byte of é alone, then 'a'.
  EXPECT_EQ(t.decode({id(byteToUnicode()[0xC3]), id("a")}, true), "\xEF\xBF\xBD"
                                                                  "a");
}

TEST_F(Bpe, RefusesWhatItDoesNotImplement) {
  nlohmann::json j = {{"model",
                       {{"type", "BPE"},
                        {"vocab", {{"a", 0}}},
                        {"merges", nlohmann::json::array()},
                        {"byte_fallback", true}}},
                      {"pre_tokenizer", {{"type", "ByteLevel"}}}};
  writeFile(dir.file("tokenizer.json"), j.dump());
  auto t = ByteLevelBpeTokenizer::fromPath(dir.file("tokenizer.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("byte_fallback"));
  j["model"].erase("byte_fallback");
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  writeFile(dir.file("tokenizer.json"), j.dump());
  t = ByteLevelBpeTokenizer::fromPath(dir.file("tokenizer.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("ByteLevel"));
  // A merge whose token the vocabulary lacks.
  writeFile(dir.file("merges.txt"), "#version: 0.2\nx y\n");
  auto v = ByteLevelBpeTokenizer::fromPath(dir.file("vocab.json"));
  ASSERT_FALSE(v.ok());
  EXPECT_THAT(std::string(v.status().message()), HasSubstr("\"xy\""));
}

TEST_F(Bpe, TextTokenizerChoosesByFiles) {
  auto t = TextTokenizer::fromPath(dir.file("vocab.json"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->isBpe());
  EXPECT_THAT(*t->encode("hello", 10), ElementsAre(0, id("hello"), 2));
  EXPECT_EQ(*t->decode({0, id("hello"), 2}, true), "hello");
}

TEST_F(Bpe, Seq2SeqTextRows) {
  DatasetOptions o;
  o.task = Task::kSeq2Seq;
  o.padSize = 4;
  o.targetPadSize = 3;
  o.vocabSize = 5 + 256 + 6;
  o.padId = 1;
  o.tokenizerPath = dir.path();
  writeFile(dir.file("d.jsonl"),
            "{\"text\": \"hello\", \"target_text\": \"hello world\"}\n");
  auto ds = Dataset::load(dir.file("d.jsonl"), o);
  ASSERT_TRUE(ds.ok()) << ds.status();
  const Row &r = ds->row(0);
  EXPECT_THAT(r.input_ids, ElementsAre(0, id("hello"), 2, 1));
  EXPECT_THAT(r.attention_mask, ElementsAre(1, 1, 1, 0));
  // target_text cut to 3 ids: <s> hello </s>; the decoder reads them shifted.
  EXPECT_THAT(r.labels, ElementsAre(0, id("hello"), 2));
  EXPECT_THAT(r.decoder_input_ids, ElementsAre(2, 0, id("hello")));
  writeFile(dir.file("d.jsonl"), "{\"text\": \"hello\"}\n");
  ds = Dataset::load(dir.file("d.jsonl"), o);
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(std::string(ds.status().message()), HasSubstr("target_text"));
}

} // namespace
} // namespace galaxy::io
