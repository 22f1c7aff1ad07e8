#include "runtime/io/wordpiece.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/io/test_util.h"

namespace galaxy::io {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

WordPieceTokenizer smallVocab() {
  auto t = WordPieceTokenizer::fromTokens(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##want", "##ed",
       "want", "wa", "runn", "##ing", "hello", "cafe", "naive", "!", ",", "?",
       "."});
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(*t);
}

TEST(WordPiece, BasicTokenizerLowerCasesAndSplitsPunctuation) {
  auto t = smallVocab();
  EXPECT_THAT(t.basicTokenize(" \tHeLLo!how  \n Are yoU?  "),
              ElementsAre("hello", "!", "how", "are", "you", "?"));
  // Every non-alphanumeric ASCII symbol is punctuation, even ^ and ` (not
  // Unicode P*).
  EXPECT_THAT(t.basicTokenize("$5.00 e-mail a^b`c"),
              ElementsAre("$", "5", ".", "00", "e", "-", "mail", "a", "^", "b",
                          "`", "c"));
  // Unicode punctuation (Pi/Pf quotes, the ideographic full stop).
  EXPECT_THAT(t.basicTokenize("«hi»。"), ElementsAre("«", "hi", "»", "。"));
}

TEST(WordPiece, StripsAccentsComposedOrNot) {
  auto t = smallVocab();
  EXPECT_THAT(t.basicTokenize("H\u00e9llo Caf\u00c9 na\u00efve"),
              ElementsAre("hello", "cafe", "naive"));
  EXPECT_THAT(t.basicTokenize("He\u0301llo"),
              ElementsAre("hello")); // e + combining acute
  EXPECT_THAT(t.basicTokenize("\u0386\u039b\u03a6\u0391"),
              ElementsAre("\u03b1\u03bb\u03c6\u03b1"));
  EXPECT_THAT(t.tokenize("Héllo, CAFÉ naïve!"),
              ElementsAre("hello", ",", "cafe", "naive", "!"));
}

TEST(WordPiece, ChineseCharactersAreWordsOfTheirOwn) {
  auto t = smallVocab();
  EXPECT_THAT(t.basicTokenize("ah\u535a\u63a8zz"),
              ElementsAre("ah", "\u535a", "\u63a8", "zz"));
  // Hiragana is not in the CJK ideograph blocks: it stays inside its word.
  EXPECT_THAT(t.basicTokenize("\u3042\u3044 \u4e2d\u6587"),
              ElementsAre("\u3042\u3044", "\u4e2d", "\u6587"));
}

TEST(WordPiece, CleansControlCharacters) {
  auto t = smallVocab();
  const std::string text = std::string("a\x01") + "b" + std::string(1, '\0') +
                           "c\xEF\xBF\xBD" + "d\xC2\xA0" +
                           "e\u200bf"; // U+FFFD, NBSP (Zs), U+200B (Cf)
  EXPECT_THAT(t.basicTokenize(text), ElementsAre("abcd", "ef"));
}

TEST(WordPiece, GreedyLongestMatchFirst) {
  auto t = smallVocab();
  EXPECT_THAT(t.tokenize("unwanted running"),
              ElementsAre("un", "##want", "##ed", "runn", "##ing"));
  // One unmatched tail makes the whole word unknown.
  EXPECT_THAT(t.tokenize("unwantedX running"),
              ElementsAre("[UNK]", "runn", "##ing"));
  EXPECT_THAT(t.tokenize("xyz"), ElementsAre("[UNK]"));
  EXPECT_THAT(t.tokenize(""), ElementsAre());
  // Over 100 characters is [UNK] even when pieces would match; 100 is still
  // split.
  std::string w100 = "un";
  for (int i = 0; i < 24; ++i)
    w100 += "want";
  w100 += "ed";
  ASSERT_EQ(w100.size(), 100u);
  EXPECT_EQ(t.tokenize(w100).size(), 26u);
  EXPECT_THAT(t.tokenize(w100 + "ed"), ElementsAre("[UNK]"));
}

TEST(WordPiece, SpecialTokensPassThrough) {
  auto t = smallVocab();
  EXPECT_THAT(t.tokenize("[CLS] hello [MASK]"),
              ElementsAre("[CLS]", "hello", "[MASK]"));
  EXPECT_THAT(t.basicTokenize("[cls]"), ElementsAre("[", "cls", "]"));
}

TEST(WordPiece, EncodeLikeThePrototype) {
  auto t = smallVocab();
  // [CLS]=2 hello=12 ,=16 cafe=13 !=15
  EncodedText e = t.encode("Hello, café!", 8);
  EXPECT_THAT(e.input_ids, ElementsAre(2, 12, 16, 13, 15, 0, 0, 0));
  EXPECT_THAT(e.attention_mask, ElementsAre(1, 1, 1, 1, 1, 0, 0, 0));
  EXPECT_THAT(e.token_type_ids, ElementsAre(0, 0, 0, 0, 0, 0, 0, 0));
  EncodedText cut = t.encode("Hello, café!", 3);
  EXPECT_THAT(cut.input_ids, ElementsAre(2, 12, 16));
  EXPECT_THAT(cut.attention_mask, ElementsAre(1, 1, 1));
  EXPECT_THAT(t.encode("", 3).input_ids, ElementsAre(2, 0, 0));
}

TEST(WordPiece, VocabFiles) {
  testing::TempDir dir;
  testing::writeFile(dir.file("v.txt"),
                     "[PAD]\r\n[UNK]\r\n[CLS]\r\nhi\r\n[SEP]\r\n[MASK]\r\n");
  auto t = WordPieceTokenizer::fromFile(dir.file("v.txt"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->vocabSize(), 6);
  EXPECT_EQ(t->id("hi"), 3);
  EXPECT_EQ(t->id("nope"), -1);
  EXPECT_EQ(t->unkId(), 1);

  auto missing = WordPieceTokenizer::fromFile(dir.file("none.txt"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("none.txt"));

  testing::writeFile(dir.file("nounk.txt"), "[PAD]\n[CLS]\nhi\n");
  auto noUnk = WordPieceTokenizer::fromFile(dir.file("nounk.txt"));
  EXPECT_FALSE(noUnk.ok());
  EXPECT_THAT(noUnk.status().message(), HasSubstr("lacks [UNK]"));
}

TEST(WordPiece, DemoVocab) {
  auto t = WordPieceTokenizer::fromFile(GALAXY_SOURCE_DIR
                                        "/configs/data/demo/vocab.txt");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->id("[PAD]"), 0);
  EXPECT_EQ(t->clsId(), 2);
  EXPECT_THAT(
      t->tokenize("Málaga's cafés, xyzzy!"),
      ElementsAre("malaga", "'", "[UNK]", "cafe", "##s", ",", "[UNK]", "!"));
}

} // namespace
} // namespace galaxy::io
