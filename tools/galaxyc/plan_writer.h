// Writes a compile's plans to DIR/rank<R>.plan.pb as they are lowered, so
// galaxyc never holds more than the plans being lowered at once (a 70B-shaped
// model over 64 ranks held 64 plans and their serialized copies: 2 GB).
//
// Every plan gets the compile id: one id over the content of all the plans of
// the compile, so the ranks of one compile share it, a recompile of the same
// config gets it again and galaxy-run refuses plans of two compiles mixed.
// It is the SHA-256, over the plans in world-rank order, of each plan's size
// and SHA-256, each plan serialized deterministically without the id (protobuf
// maps otherwise come out in hash order). A plan's own hash is taken on the
// thread that lowered it; the id is known only once every plan is, so each
// file is written without it first and the id appended as one more field
// (protobuf merges a field that follows the rest), then all files are renamed
// into place: a failure never leaves a half-written plan directory behind.
#pragma once

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy {

class PlanWriter {
public:
  // Creates `dir` (and its parents) if missing; `plans` is how many will come.
  static absl::StatusOr<std::unique_ptr<PlanWriter>>
  open(const std::string &dir, int plans);
  ~PlanWriter(); // removes the temporary files unless commit() succeeded

  // Thread-safe. Writes `p` (its compile id ignored) to its temporary file.
  absl::Status add(const plan::Plan &p);
  // Computes the compile id, appends it to every file and renames them into
  // place. Every one of the `plans` must have been added.
  absl::Status commit();
  const std::string &compileId() const { return id_; }

private:
  PlanWriter(std::filesystem::path dir, bool created, int plans);

  struct Written {
    std::filesystem::path tmp, final;
    uint64_t bytes = 0;
    std::string digest; // empty until added
  };
  std::filesystem::path dir_;
  bool createdDir_;
  std::mutex mu_;
  std::vector<Written> files_; // by world rank
  bool committed_ = false;
  std::string id_;
};

// The file name's rank: a pipeline plan's rank is its rank in its stage's
// group, so the world rank is stage * group size + rank.
int worldRankOf(const plan::Plan &p);

} // namespace galaxy
