// runtime/exec/checkpoint.h through its API: what counts as a complete
// checkpoint, --keep, the newest one chosen, and which config changes a
// resume accepts. The end-to-end resume tests are tests/equiv/run_resume.py.
#include "runtime/exec/checkpoint.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace galaxy::rt {
namespace {

namespace fs = std::filesystem;

class Checkpoint : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("galaxy-checkpoint-test-", getpid(), "-", rand()))
               .string();
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  absl::StatusOr<std::string> write(int64_t step, int64_t keep = 0) {
    CheckpointState s;
    s.step = step;
    s.seed = 7;
    s.dataPath = "train.jsonl";
    s.dataRows = 24;
    s.batchSize = 6;
    s.configJson = R"({"hidden_size": 64})";
    s.layout = "serial over 1 rank";
    return writeCheckpoint(dir_, s,
                           {{"w", io::StDType::F32, {2}, weights_},
                            {"w.exp_avg", io::StDType::F32, {2}, moments_},
                            {"w.exp_avg_sq", io::StDType::F32, {2}, moments_}},
                           keep);
  }

  std::vector<std::string> names() {
    std::vector<std::string> out;
    for (const std::string &p : completeCheckpoints(dir_))
      out.push_back(fs::path(p).filename().string());
    return out;
  }

  std::string dir_;
  const float weights_[2] = {1.5f, -2.0f};
  const float moments_[2] = {0.25f, 0.125f};
};

TEST_F(Checkpoint, WrittenCheckpointOpensWithItsState) {
  auto path = write(3);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(fs::path(*path).filename(), "step-00000003");
  auto c = openCheckpoint(dir_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state.step, 3);
  EXPECT_EQ(c->state.seed, 7u);
  EXPECT_EQ(c->state.dataRows, 24);
  ASSERT_NE(c->model.find("w"), nullptr);
  EXPECT_EQ(c->model.find("w.exp_avg"), nullptr); // moments go apart
  ASSERT_NE(c->optimizer.find("w.exp_avg_sq"), nullptr);
  auto m = c->optimizer.readF32("w.exp_avg", {2});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[1], 0.125f);
  // No temporary is left next to it.
  for (const auto &e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename().string().rfind(".", 0), std::string::npos)
        << e.path();
}

TEST_F(Checkpoint, IncompleteOnesAreIgnoredAndTheNewestCompleteIsUsed) {
  ASSERT_TRUE(write(2).ok());
  ASSERT_TRUE(write(4).ok());
  // A write killed before its manifest; a step directory with a file cut
  // short after its manifest was written; a temporary.
  fs::create_directories(dir_ + "/step-00000009");
  std::ofstream(dir_ + "/step-00000009/model.safetensors") << "x";
  fs::copy(dir_ + "/step-00000004", dir_ + "/step-00000006");
  fs::resize_file(dir_ + "/step-00000006/optimizer.safetensors", 10);
  fs::create_directories(dir_ + "/.step-00000008.tmp-1");
  EXPECT_EQ(names(),
            (std::vector<std::string>{"step-00000002", "step-00000004"}));
  auto c = openCheckpoint(dir_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state.step, 4);
  // Asked for by name, the truncated one is refused, naming the file.
  auto bad = openCheckpoint(dir_ + "/step-00000006");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("optimizer.safetensors"),
            std::string::npos)
      << bad.status();
  // The next save removes the temporary.
  ASSERT_TRUE(write(5).ok());
  EXPECT_FALSE(fs::exists(dir_ + "/.step-00000008.tmp-1"));
}

TEST_F(Checkpoint, KeepPrunesTheOldest) {
  for (int64_t s = 1; s <= 5; ++s)
    ASSERT_TRUE(write(s, /*keep=*/2).ok());
  EXPECT_EQ(names(),
            (std::vector<std::string>{"step-00000004", "step-00000005"}));
}

TEST_F(Checkpoint, SameStepAgainReplacesIt) {
  ASSERT_TRUE(write(3).ok());
  ASSERT_TRUE(write(3).ok());
  EXPECT_EQ(names(), (std::vector<std::string>{"step-00000003"}));
}

TEST_F(Checkpoint, EmptyDirectoryIsNotFound) {
  auto c = openCheckpoint(dir_);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
}

TEST(CheckpointConfig, LayoutMayChangeTheModelMayNot) {
  const std::string saved =
      R"({"hidden_size": 64, "learning_rate": 0.001, "parallel_mode": "galaxy",
          "world_size": 2, "seq_scatter_list": [10, 6], "num_epochs": 3})";
  std::vector<std::string> layout;
  EXPECT_TRUE(
      compareCheckpointConfig(saved,
                              R"({"hidden_size": 64, "learning_rate": 0.001,
                      "parallel_mode": "tp", "world_size": 3,
                      "tp_intermediate_size_list": [64, 32, 32],
                      "num_epochs": 9})",
                              &layout)
          .ok());
  EXPECT_EQ(layout.size(), 4u); // mode, world, both split lists
  for (const char *changed :
       {R"({"hidden_size": 96, "learning_rate": 0.001})",
        R"({"hidden_size": 64, "learning_rate": 0.002})"}) {
    layout.clear();
    absl::Status s = compareCheckpointConfig(saved, changed, &layout);
    ASSERT_FALSE(s.ok()) << changed;
    EXPECT_TRUE(s.message().find("hidden_size is 96") != std::string::npos ||
                s.message().find("learning_rate is 0.002") != std::string::npos)
        << s;
  }
}

} // namespace
} // namespace galaxy::rt
