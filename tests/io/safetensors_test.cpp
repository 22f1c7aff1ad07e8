#include "runtime/io/safetensors.h"

#include <cstring>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/io/test_util.h"

namespace galaxy::io {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::readFile;
using testing::TempDir;
using testing::writeFile;

// A safetensors file built by hand, independent of writeSafetensors.
std::string rawFile(const std::string &header, const std::string &data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

template <typename T> std::string bytesOf(const std::vector<T> &v) {
  return std::string(reinterpret_cast<const char *>(v.data()),
                     v.size() * sizeof(T));
}

TEST(Safetensors, RoundTripF32AndI32) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  std::vector<float> w = {1.5f, -2.0f, 3.25f, 0.0f, 1e-8f, 7.0f};
  std::vector<int32_t> ids = {3, -1, 2147483647};
  std::vector<float> b = {0.5f};
  // Given out of order: the header and data come out sorted by name.
  ASSERT_TRUE(writeSafetensors(path,
                               {{"z.weight", StDType::F32, {2, 3}, w.data()},
                                {"a.ids", StDType::I32, {3}, ids.data()},
                                {"m.bias", StDType::F32, {1}, b.data()}},
                               {{"format", "pt"}})
                  .ok());
  auto f = readSafetensors(path);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->tensors()[0].name, "a.ids");
  EXPECT_EQ(f->tensors()[1].name, "m.bias");
  EXPECT_EQ(f->tensors()[2].name, "z.weight");
  EXPECT_EQ(f->metadata().at("format"), "pt");
  auto wr = f->readF32("z.weight", {2, 3});
  ASSERT_TRUE(wr.ok()) << wr.status();
  EXPECT_EQ(*wr, w);
  auto ir = f->readI32("a.ids", {3});
  ASSERT_TRUE(ir.ok()) << ir.status();
  EXPECT_EQ(*ir, ids);

  // Layout: header padded so data starts 8-aligned; tensors contiguous in name
  // order.
  const std::string raw = readFile(path);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  const std::string header = raw.substr(8, n);
  EXPECT_LT(header.find("\"a.ids\""), header.find("\"m.bias\""));
  EXPECT_LT(header.find("\"m.bias\""), header.find("\"z.weight\""));
  EXPECT_THAT(header, HasSubstr("\"data_offsets\":[0,12]"));
  EXPECT_THAT(header, HasSubstr("\"data_offsets\":[12,16]"));
  EXPECT_THAT(header, HasSubstr("\"data_offsets\":[16,40]"));
  EXPECT_EQ(raw.size(), 8 + n + 40);
}

TEST(Safetensors, ReadsHandBuiltFileWithHalfBf16AndI64) {
  TempDir dir;
  const std::string path = dir.file("h.safetensors");
  // F16: 1, -2, 0.5, smallest subnormal 2^-24. BF16: 1, 3.140625. I64: 5, -7.
  std::vector<uint16_t> half = {0x3C00, 0xC000, 0x3800, 0x0001};
  std::vector<uint16_t> bf = {0x3F80, 0x4049};
  std::vector<int64_t> longs = {5, -7};
  const std::string header =
      R"({"__metadata__":{"k":"v"},"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},)"
      R"("l":{"dtype":"I64","shape":[2],"data_offsets":[12,28]}})";
  writeFile(path,
            rawFile(header, bytesOf(half) + bytesOf(bf) + bytesOf(longs)));
  auto f = readSafetensors(path);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(*f->readF32("h", {2, 2}),
              ElementsAre(1.0f, -2.0f, 0.5f, std::ldexp(1.0f, -24)));
  EXPECT_THAT(*f->readF32("b", {2}), ElementsAre(1.0f, 3.140625f));
  EXPECT_THAT(*f->readI32("l", {2}), ElementsAre(5, -7));
  auto wrongKind = f->readF32("l", {2});
  EXPECT_THAT(wrongKind.status().message(), HasSubstr("has dtype I64"));
}

TEST(Safetensors, I64ThatDoesNotFitInt32IsAnError) {
  TempDir dir;
  const std::string path = dir.file("l.safetensors");
  std::vector<int64_t> v = {1, int64_t{1} << 40};
  ASSERT_TRUE(
      writeSafetensors(path, {{"pos", StDType::I64, {2}, v.data()}}).ok());
  auto f = readSafetensors(path);
  ASSERT_TRUE(f.ok());
  auto r = f->readI32("pos", {2});
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("'pos'"));
}

TEST(Safetensors, WrongShapeAndMissingNameNameTheFile) {
  TempDir dir;
  const std::string path = dir.file("m.safetensors");
  std::vector<float> w(6, 1.0f);
  ASSERT_TRUE(
      writeSafetensors(path, {{"w", StDType::F32, {2, 3}, w.data()}}).ok());
  auto f = readSafetensors(path);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->find("nope"), nullptr);
  ASSERT_NE(f->find("w"), nullptr);
  auto missing = f->readF32("nope", {2, 3});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "missing tensor 'nope' in " + path);
  auto shape = f->readF32("w", {3, 2});
  EXPECT_EQ(shape.status().message(),
            "tensor 'w' in " + path +
                " has shape [2,3], the plan expects [3,2]");
}

TEST(Safetensors, SliceReads) {
  TempDir dir;
  const std::string path = dir.file("s.safetensors");
  std::vector<float> cube(24), mat(24);
  for (int i = 0; i < 24; ++i)
    cube[i] = mat[i] = static_cast<float>(i);
  ASSERT_TRUE(
      writeSafetensors(path, {{"cube", StDType::F32, {2, 3, 4}, cube.data()},
                              {"mat", StDType::F32, {4, 6}, mat.data()}})
          .ok());
  auto f = readSafetensors(path);
  ASSERT_TRUE(f.ok());
  // element (a,b,c) of [2,3,4] is a*12 + b*4 + c.
  auto box = f->readF32("cube", {2, 3, 4}, Slice{{1, 1, 2}, {1, 2, 2}});
  ASSERT_TRUE(box.ok()) << box.status();
  EXPECT_THAT(*box, ElementsAre(18, 19, 22, 23));
  // A column shard (tensor parallel): columns 2..3 of every row.
  auto cols = f->readF32("mat", {4, 6}, Slice{{0, 2}, {4, 2}});
  ASSERT_TRUE(cols.ok());
  EXPECT_THAT(*cols, ElementsAre(2, 3, 8, 9, 14, 15, 20, 21));
  // A row shard: rows 1..2.
  auto rows = f->readF32("mat", {4, 6}, Slice{{1, 0}, {2, 6}});
  ASSERT_TRUE(rows.ok());
  EXPECT_THAT(*rows, ElementsAre(6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17));
  std::vector<float> into(2);
  ASSERT_TRUE(
      f->readF32Into("mat", {4, 6}, Slice{{3, 4}, {1, 2}}, into.data()).ok());
  EXPECT_THAT(into, ElementsAre(22, 23));
  auto outside = f->readF32("mat", {4, 6}, Slice{{3, 0}, {2, 6}});
  EXPECT_FALSE(outside.ok());
  EXPECT_THAT(outside.status().message(),
              HasSubstr("does not fit tensor 'mat'"));
  auto rankMismatch = f->readF32("mat", {4, 6}, Slice{{0}, {4}});
  EXPECT_FALSE(rankMismatch.ok());
}

TEST(Safetensors, TruncatedFiles) {
  TempDir dir;
  const std::string path = dir.file("t.safetensors");
  std::vector<float> w(16, 2.0f);
  ASSERT_TRUE(
      writeSafetensors(path, {{"enc.w", StDType::F32, {4, 4}, w.data()}}).ok());
  const std::string full = readFile(path);

  writeFile(path, full.substr(0, full.size() - 4)); // data cut short
  auto cut = readSafetensors(path);
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.status().message(), HasSubstr("'enc.w'"));
  EXPECT_THAT(cut.status().message(), HasSubstr(path));
  EXPECT_THAT(cut.status().message(), HasSubstr("truncated"));

  writeFile(path, full.substr(0, 20)); // header cut short
  auto header = readSafetensors(path);
  ASSERT_FALSE(header.ok());
  EXPECT_THAT(header.status().message(), HasSubstr("header length"));

  writeFile(path, full.substr(0, 5)); // not even the length
  auto tiny = readSafetensors(path);
  ASSERT_FALSE(tiny.ok());
  EXPECT_THAT(tiny.status().message(), HasSubstr("too short"));

  auto none = readSafetensors(dir.file("absent.safetensors"));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
}

TEST(Safetensors, BadHeaders) {
  TempDir dir;
  const std::string path = dir.file("b.safetensors");
  const std::string data(16, '\0');
  auto errorFor = [&](const std::string &header) {
    writeFile(path, rawFile(header, data));
    auto f = readSafetensors(path);
    EXPECT_FALSE(f.ok()) << header;
    return std::string(f.status().message());
  };
  EXPECT_THAT(errorFor("not json at all"), HasSubstr("not a JSON object"));
  EXPECT_THAT(errorFor("[1,2]"), HasSubstr("not a JSON object"));
  EXPECT_THAT(
      errorFor(R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})"),
      HasSubstr("tensor 'x' in " + path + ": dtype F64 is not supported"));
  EXPECT_THAT(
      errorFor(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})"),
      HasSubstr("hold 16 bytes"));
  EXPECT_THAT(
      errorFor(R"({"x":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})"),
      HasSubstr("run past the data"));
  EXPECT_THAT(
      errorFor(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})"),
      HasSubstr("begin > end"));
  EXPECT_THAT(
      errorFor(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})"),
      HasSubstr("negative"));
  EXPECT_THAT(errorFor(R"({"x":{"dtype":"F32","shape":[2]}})"),
              HasSubstr("needs dtype, shape and data_offsets"));
  EXPECT_THAT(
      errorFor(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})"),
      HasSubstr("'x' and 'y' overlap"));
  EXPECT_THAT(errorFor(R"({"__metadata__":{"a":1}})"),
              HasSubstr("__metadata__"));
}

// Found with tests/fuzz (safetensors target's size property): shape x dtype
// size wrapped past 2^64, so a huge tensor was accepted with 0 bytes of data.
TEST(Safetensors, ShapesPastTheTensorLimitAreRefused) {
  TempDir dir;
  const std::string path = dir.file("huge.safetensors");
  for (const std::string shape :
       {"[1099511627776, 4194304]", "[1099511627776, 8388608, 1]",
        "[1048576, 1048577]"}) {
    writeFile(path, rawFile(R"({"x":{"dtype":"F32","shape":)" + shape +
                                R"(,"data_offsets":[0,0]}})",
                            ""));
    auto f = readSafetensors(path);
    ASSERT_FALSE(f.ok()) << shape;
    EXPECT_THAT(f.status().message(), HasSubstr("more than 2^40 elements"));
  }
  // At the limit the size is checked as before.
  writeFile(path, rawFile(R"({"x":{"dtype":"F32","shape":[1099511627776],)"
                          R"("data_offsets":[0,0]}})",
                          ""));
  EXPECT_THAT(readSafetensors(path).status().message(), HasSubstr("needs"));
}

TEST(Safetensors, AtomicWriteLeavesNothingBehindOnFailure) {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  std::vector<float> v1 = {1, 2}, v2 = {3, 4};
  ASSERT_TRUE(
      writeSafetensors(path, {{"p", StDType::F32, {2}, v1.data()}}).ok());
  const std::string before = readFile(path);

  // Invalid input (a name given twice): the target keeps its old contents.
  absl::Status dup =
      writeSafetensors(path, {{"p", StDType::F32, {2}, v2.data()},
                              {"p", StDType::F32, {2}, v2.data()}});
  EXPECT_FALSE(dup.ok());
  EXPECT_THAT(dup.message(), HasSubstr("'p' given twice"));
  EXPECT_EQ(readFile(path), before);

  // Missing directory: an error naming it, nothing created.
  absl::Status noDir = writeSafetensors(dir.file("no/such/dir/x.safetensors"),
                                        {{"p", StDType::F32, {2}, v2.data()}});
  EXPECT_FALSE(noDir.ok());
  EXPECT_THAT(noDir.message(), HasSubstr("does the directory exist"));

  // The rename fails (target is a directory): the temporary file is removed.
  std::filesystem::create_directory(dir.file("isdir.safetensors"));
  absl::Status rename = writeSafetensors(dir.file("isdir.safetensors"),
                                         {{"p", StDType::F32, {2}, v2.data()}});
  EXPECT_FALSE(rename.ok());
  EXPECT_THAT(dir.entries(), ::testing::UnorderedElementsAre(
                                 "ckpt.safetensors", "isdir.safetensors"));

  // A successful overwrite replaces the file and leaves no temporary either.
  ASSERT_TRUE(
      writeSafetensors(path, {{"p", StDType::F32, {2}, v2.data()}}).ok());
  EXPECT_THAT(*readSafetensors(path)->readF32("p", {2}), ElementsAre(3, 4));
  EXPECT_THAT(dir.entries(), ::testing::UnorderedElementsAre(
                                 "ckpt.safetensors", "isdir.safetensors"));
}

} // namespace
} // namespace galaxy::io
