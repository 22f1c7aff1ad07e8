// The SentencePiece path: a tiny LLaMA-style model trained here with Debian's
// spm_train, ids compared with Debian's python3-sentencepiece (what Hugging
// Face's LlamaTokenizer calls in its default, legacy mode), and the datasets
// built on it.
#include "runtime/io/sentencepiece.h"

#include <cstdio>
#include <cstdlib>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "runtime/io/dataset.h"
#include "runtime/io/text_tokenizer.h"
#include "tests/io/test_util.h"

namespace galaxy::io {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::readFile;
using testing::TempDir;
using testing::writeFile;

constexpr const char *kCorpus =
    "The quick brown fox jumps over the lazy dog.\n"
    "A stitch in time saves nine.\n"
    "Galaxy trains transformers on many machines at once.\n"
    "Hello world, this is a tiny corpus for a tiny tokenizer.\n"
    "Sentences with numbers 123 and punctuation!? are fine.\n"
    "Über café naïve résumé, unicode too.\n";

// Texts with what LLaMA's tokenizer handles specially: leading, repeated and
// trailing spaces, digits (split one by one), characters outside the training
// corpus (byte fallback), a tab, a newline, and nothing at all.
const std::vector<std::string> &texts() {
  static const std::vector<std::string> t = {
      "Hello world",
      "  two  spaces and a trailing one ",
      "numbers 2024 and 7",
      "Über café — naïve",
      "emoji \xF0\x9F\x99\x82 and \xE6\xBC\xA2\xE5\xAD\x97",
      "tab\tinside",
      "multi\nline",
      "",
      "The quick brown fox jumps over the lazy dog.",
  };
  return t;
}

int run(const std::string &cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Trains a model with LLaMA's tokenizer settings (BPE, identity
// normalization, byte fallback, split digits, <unk> 0, <s> 1, </s> 2, no pad)
// into dir/prefix.model.
std::string trainModel(const TempDir &dir, const std::string &prefix,
                       const std::string &extra = "") {
  writeFile(dir.file("corpus.txt"), kCorpus);
  const std::string cmd = absl::StrCat(
      GALAXY_SPM_TRAIN, " --input=", dir.file("corpus.txt"),
      " --model_prefix=", dir.file(prefix),
      " --model_type=bpe --vocab_size=400 --hard_vocab_limit=false"
      " --normalization_rule_name=identity --byte_fallback=true"
      " --split_digits=true --character_coverage=1.0 --unk_id=0 --bos_id=1"
      " --eos_id=2 --pad_id=-1 --minloglevel=2 ",
      extra, " > ", dir.file(prefix + ".log"), " 2>&1");
  EXPECT_EQ(run(cmd), 0) << cmd << "\n" << readFile(dir.file(prefix + ".log"));
  return dir.file(prefix + ".model");
}

class SentencePiece : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    model_ = new std::string(trainModel(*dir_, "tok"));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete dir_;
  }
  static TempDir *dir_;
  static std::string *model_;
};
TempDir *SentencePiece::dir_ = nullptr;
std::string *SentencePiece::model_ = nullptr;

TEST_F(SentencePiece, EncodesAsPythonSentencePieceWithBos) {
  auto tok = SentencePieceTokenizer::fromFile(*model_);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->bosId(), 1);
  EXPECT_EQ(tok->piece(1), "<s>");
  EXPECT_GT(tok->vocabSize(), 256); // byte pieces and merges

  // Debian's python3-sentencepiece on the same model and texts.
  writeFile(dir_->file("texts.json"), nlohmann::json(texts()).dump());
  writeFile(dir_->file("ids.py"),
            "import json, sys, sentencepiece as spm\n"
            "sp = spm.SentencePieceProcessor(model_file=sys.argv[1])\n"
            "texts = json.load(open(sys.argv[2], encoding='utf-8'))\n"
            "print(json.dumps({'bos': sp.bos_id(), 'vocab': sp.vocab_size(),"
            " 'ids': [sp.encode(t) for t in texts]}))\n");
  const std::string cmd = absl::StrCat(
      GALAXY_PYTHON3, " ", dir_->file("ids.py"), " ", *model_, " ",
      dir_->file("texts.json"), " > ", dir_->file("ids.json"), " 2>&1");
  ASSERT_EQ(run(cmd), 0) << cmd << "\n" << readFile(dir_->file("ids.json"));
  nlohmann::json want = nlohmann::json::parse(readFile(dir_->file("ids.json")));
  EXPECT_EQ(want["bos"].get<int>(), tok->bosId());
  EXPECT_EQ(want["vocab"].get<int64_t>(), tok->vocabSize());
  for (size_t i = 0; i < texts().size(); ++i) {
    std::vector<int32_t> expected = {tok->bosId()};
    for (int id : want["ids"][i])
      expected.push_back(id);
    auto got = tok->encode(texts()[i], 1000);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, expected) << "text " << i << ": '" << texts()[i] << "'";
  }
  // The emoji is outside the corpus: byte pieces, not <unk>.
  auto emoji = tok->pieces("\xF0\x9F\x99\x82");
  ASSERT_TRUE(emoji.ok());
  EXPECT_THAT(*emoji, ::testing::Not(::testing::Contains(0)));
}

// decode (galaxy-run --prompt prints with it) against Python's decode of the
// same ids: BOS/EOS dropped, byte pieces joined back into UTF-8.
TEST_F(SentencePiece, DecodesAsPythonSentencePiece) {
  auto tok = SentencePieceTokenizer::fromFile(*model_);
  ASSERT_TRUE(tok.ok()) << tok.status();
  std::vector<std::vector<int32_t>> ids;
  for (const std::string &t : texts()) {
    auto e = tok->encode(t, 1000);
    ASSERT_TRUE(e.ok()) << e.status();
    e->push_back(2); // an EOS the model generated
    ids.push_back(*e);
  }
  writeFile(dir_->file("decode_ids.json"), nlohmann::json(ids).dump());
  writeFile(dir_->file("decode.py"),
            "import json, sys, sentencepiece as spm\n"
            "sp = spm.SentencePieceProcessor(model_file=sys.argv[1])\n"
            "ids = json.load(open(sys.argv[2]))\n"
            "print(json.dumps([sp.decode(i) for i in ids]))\n");
  const std::string cmd =
      absl::StrCat(GALAXY_PYTHON3, " ", dir_->file("decode.py"), " ", *model_,
                   " ", dir_->file("decode_ids.json"), " > ",
                   dir_->file("decoded.json"), " 2>&1");
  ASSERT_EQ(run(cmd), 0) << cmd << "\n" << readFile(dir_->file("decoded.json"));
  nlohmann::json want =
      nlohmann::json::parse(readFile(dir_->file("decoded.json")));
  for (size_t i = 0; i < ids.size(); ++i) {
    auto got = tok->decode(ids[i]);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, want[i].get<std::string>()) << "text " << i;
  }
  EXPECT_EQ(*tok->decode(ids.back()), texts().back());
  auto bad = tok->decode({1, int32_t(tok->vocabSize())});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("outside its vocabulary"));
}

// TextTokenizer (--tokenizer by file type) decodes a SentencePiece model's
// ids as the model itself does.
TEST_F(SentencePiece, TextTokenizerDecodesLikeTheModel) {
  auto sp = SentencePieceTokenizer::fromFile(*model_);
  auto text = TextTokenizer::fromPath(*model_);
  ASSERT_TRUE(sp.ok() && text.ok());
  for (const std::string &t : texts()) {
    auto ids = sp->encode(t, -1);
    ASSERT_TRUE(ids.ok());
    auto got = text->decode(*ids, true);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, *sp->decode(*ids));
  }
}

TEST_F(SentencePiece, TruncatesAfterTheBos) {
  auto tok = SentencePieceTokenizer::fromFile(*model_);
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto full = tok->encode("The quick brown fox jumps", 1000);
  auto cut = tok->encode("The quick brown fox jumps", 3);
  ASSERT_TRUE(full.ok() && cut.ok());
  ASSERT_GT(full->size(), 3u);
  EXPECT_EQ(*cut, std::vector<int32_t>(full->begin(), full->begin() + 3));
  EXPECT_THAT(*tok->encode("", 8), ElementsAre(1)); // BOS alone
}

TEST_F(SentencePiece, ModelErrors) {
  auto missing = SentencePieceTokenizer::fromFile(dir_->file("absent.model"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(),
              HasSubstr("cannot load SentencePiece model " +
                        dir_->file("absent.model")));
  writeFile(dir_->file("garbage.model"), "not a model");
  auto garbage = SentencePieceTokenizer::fromFile(dir_->file("garbage.model"));
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(garbage.status().message(), HasSubstr("garbage.model"));
  TempDir other;
  const std::string noBos = trainModel(other, "nobos", "--bos_id=-1");
  auto t = SentencePieceTokenizer::fromFile(noBos);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("has no BOS piece"));
}

TEST_F(SentencePiece, TextDatasets) {
  auto tok = SentencePieceTokenizer::fromFile(*model_);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const int64_t S = 12;
  auto ids = [&](const std::string &text) { return *tok->encode(text, S); };

  // Classification from the prototype's TSV: BOS + pieces, padded with the
  // pad id, last_index on the last real token.
  DatasetOptions cls;
  cls.padSize = S;
  cls.numClasses = 2;
  cls.vocabSize = tok->vocabSize();
  cls.padId = 0;
  cls.lastIndex = true;
  cls.tokenizerPath = *model_;
  writeFile(dir_->file("d.tsv"), "Hello world\t1\nnumbers 2024 and 7\t0\n");
  auto tsv = Dataset::load(dir_->file("d.tsv"), cls);
  ASSERT_TRUE(tsv.ok()) << tsv.status();
  ASSERT_EQ(tsv->size(), 2);
  const std::vector<int32_t> hello = ids("Hello world");
  std::vector<int32_t> padded = hello;
  padded.resize(S, 0);
  EXPECT_EQ(tsv->row(0).input_ids, padded);
  EXPECT_EQ(tsv->row(0).label, 1);
  EXPECT_EQ(tsv->row(0).lastIndex, int32_t(hello.size()) - 1);
  EXPECT_EQ(tsv->row(0).attention_mask[hello.size() - 1], 1.0f);
  EXPECT_EQ(tsv->row(0).attention_mask[hello.size()], 0.0f);

  // The same rows as JSONL text.
  writeFile(dir_->file("c.jsonl"),
            "{\"text\": \"Hello world\", \"label\": 1}\n"
            "{\"text\": \"numbers 2024 and 7\", \"label\": 0}\n");
  auto jsonl = Dataset::load(dir_->file("c.jsonl"), cls);
  ASSERT_TRUE(jsonl.ok()) << jsonl.status();
  for (int64_t r = 0; r < 2; ++r) {
    EXPECT_EQ(jsonl->row(r).input_ids, tsv->row(r).input_ids);
    EXPECT_EQ(jsonl->row(r).attention_mask, tsv->row(r).attention_mask);
    EXPECT_EQ(jsonl->row(r).lastIndex, tsv->row(r).lastIndex);
    EXPECT_EQ(jsonl->row(r).label, tsv->row(r).label);
  }

  // Causal LM from JSONL text: the targets are the text's own next ids; a
  // long text is cut to pad_size.
  DatasetOptions lm = cls;
  lm.task = Task::kCausalLm;
  lm.lastIndex = false;
  writeFile(dir_->file("lm.jsonl"),
            "{\"text\": \"Hello world\"}\n"
            "{\"text\": \"The quick brown fox jumps over the lazy dog.\"}\n");
  auto causal = Dataset::load(dir_->file("lm.jsonl"), lm);
  ASSERT_TRUE(causal.ok()) << causal.status();
  std::vector<int32_t> targets(S, kIgnoreIndex);
  for (size_t s = 0; s + 1 < hello.size(); ++s)
    targets[s] = hello[s + 1];
  EXPECT_EQ(causal->row(0).labels, targets);
  const std::vector<int32_t> fox =
      ids("The quick brown fox jumps over the lazy dog.");
  ASSERT_EQ(fox.size(), size_t(S)); // truncated
  EXPECT_EQ(causal->row(1).input_ids, fox);
  EXPECT_EQ(causal->row(1).labels.back(), kIgnoreIndex);
  EXPECT_EQ(causal->row(1).numTargets, S - 1);
}

TEST_F(SentencePiece, TextRowErrorsNameFileLineAndKey) {
  DatasetOptions lm;
  lm.task = Task::kCausalLm;
  lm.padSize = 8;
  lm.vocabSize = 400;
  lm.tokenizerPath = *model_;
  const std::string f = dir_->file("bad.jsonl");
  auto message = [&](const std::string &content, const DatasetOptions &o) {
    writeFile(f, content);
    auto ds = Dataset::load(f, o);
    EXPECT_FALSE(ds.ok());
    return std::string(ds.status().message());
  };
  EXPECT_THAT(message("{\"text\": \"hi\"}\n{\"text\": 3}\n", lm),
              HasSubstr(f + ":2: \"text\" is not a string"));
  EXPECT_THAT(message("{\"text\": \"hi\", \"attention_mask\": [1]}\n", lm),
              HasSubstr(f + ":1: \"attention_mask\" goes with \"input_ids\", "
                            "not \"text\""));
  EXPECT_THAT(message("{\"text\": \"hi\", \"labels\": [1]}\n", lm),
              HasSubstr(f + ":1: \"labels\" goes with"));
  // A tokenizer of another model: ids past the plan's vocabulary.
  DatasetOptions small = lm;
  small.vocabSize = 5;
  EXPECT_THAT(message("{\"text\": \"Hello world\"}\n", small),
              HasSubstr(f + ":1: piece '"));
  EXPECT_THAT(message("{\"text\": \"Hello world\"}\n", small),
              HasSubstr("outside the model's vocab_size 5"));
  // Pre-tokenized ids win over a row's text.
  writeFile(f, "{\"text\": \"Hello world\", \"input_ids\": [7, 8]}\n");
  auto both = Dataset::load(f, lm);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->row(0).input_ids[0], 7);
  EXPECT_EQ(both->row(0).input_ids[1], 8);
  DatasetOptions absent = lm;
  absent.tokenizerPath = dir_->file("absent.model");
  EXPECT_THAT(message("{\"text\": \"hi\"}\n", absent),
              HasSubstr("absent.model"));
}

} // namespace
} // namespace galaxy::io
