// Shared helpers for the io tests: a fresh temporary directory and whole-file
// I/O.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/statusor.h"
#include "runtime/io/dataset.h"

namespace galaxy::io::testing {

// A new empty directory under gtest's temp dir, removed at destruction.
class TempDir {
public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "/galaxy_io_XXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string &name) const { return path_ + "/" + name; }
  const std::string &path() const { return path_; }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto &e : std::filesystem::directory_iterator(path_))
      out.push_back(e.path().filename().string());
    return out;
  }

private:
  std::string path_;
};

inline void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

inline std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fixture that loads JSONL text as a Dataset and reads refusals.
class JsonlData : public ::testing::Test {
protected:
  absl::StatusOr<Dataset> load(const std::string &content,
                               const DatasetOptions &o) {
    writeFile(dir.file("d.jsonl"), content);
    return Dataset::load(dir.file("d.jsonl"), o);
  }
  std::string message(const absl::StatusOr<Dataset> &ds) {
    EXPECT_FALSE(ds.ok());
    return std::string(ds.status().message());
  }
  TempDir dir;
};

} // namespace galaxy::io::testing
