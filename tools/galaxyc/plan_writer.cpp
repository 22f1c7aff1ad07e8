#include "tools/galaxyc/plan_writer.h"

#include <fstream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "runtime/comm/sha256.h"

namespace fs = std::filesystem;

namespace galaxy {
namespace {

// Sized once and written in place (a growing string moved a 3 MB plan about
// many times over).
absl::StatusOr<std::string> serializeDeterministic(const plan::Plan &p) {
  const size_t size = p.ByteSizeLong();
  if (size > static_cast<size_t>(std::numeric_limits<int>::max()))
    return absl::InvalidArgumentError(
        absl::StrCat("the plan of rank ", p.rank(), " would take ", size,
                     " bytes, more than protobuf's 2 GiB"));
  std::string bytes(size, '\0');
  google::protobuf::io::ArrayOutputStream array(bytes.data(),
                                                static_cast<int>(bytes.size()));
  google::protobuf::io::CodedOutputStream cos(&array);
  cos.SetSerializationDeterministic(true);
  p.SerializeWithCachedSizes(&cos);
  return bytes;
}

} // namespace

int worldRankOf(const plan::Plan &p) {
  return p.pipeline().num_stages() > 0
             ? p.pipeline().stage() * p.pipeline().group_size() + p.rank()
             : p.rank();
}

absl::StatusOr<std::unique_ptr<PlanWriter>>
PlanWriter::open(const std::string &dir, int plans) {
  std::error_code ec;
  const bool existed = fs::exists(dir, ec);
  fs::create_directories(dir, ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot create plan directory '", dir, "': ", ec.message()));
  return std::unique_ptr<PlanWriter>(new PlanWriter(dir, !existed, plans));
}

PlanWriter::PlanWriter(fs::path dir, bool created, int plans)
    : dir_(std::move(dir)), createdDir_(created), files_(plans) {}

PlanWriter::~PlanWriter() {
  if (committed_)
    return;
  std::error_code ec;
  for (const Written &w : files_)
    if (!w.tmp.empty())
      fs::remove(w.tmp, ec);
  if (createdDir_)
    fs::remove(dir_, ec); // only if empty
}

absl::Status PlanWriter::add(const plan::Plan &p) {
  const int rank = worldRankOf(p);
  if (rank < 0 || rank >= static_cast<int>(files_.size()))
    return absl::InternalError(absl::StrCat("plan of world rank ", rank,
                                            " outside the ", files_.size(),
                                            " plans of this compile"));
  absl::StatusOr<std::string> serialized;
  if (p.compile_id().empty()) {
    serialized = serializeDeterministic(p);
  } else {
    plan::Plan copy = p;
    copy.clear_compile_id();
    serialized = serializeDeterministic(copy);
  }
  if (!serialized.ok())
    return serialized.status();
  const std::string &bytes = *serialized;
  const crypto::Digest digest = crypto::sha256(bytes);
  fs::path final = dir_ / absl::StrCat("rank", rank, ".plan.pb");
  fs::path tmp = final;
  tmp += ".tmp";
  {
    // Recorded before writing, so a failed write's file is removed too.
    std::lock_guard<std::mutex> lock(mu_);
    files_[rank].tmp = tmp;
  }
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out || !out.write(bytes.data(), bytes.size()) || !out.flush())
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write '", tmp.string(), "'"));
  std::lock_guard<std::mutex> lock(mu_);
  files_[rank].final = std::move(final);
  files_[rank].bytes = bytes.size();
  files_[rank].digest = std::string(crypto::asBytes(digest));
  return absl::OkStatus();
}

absl::Status PlanWriter::commit() {
  crypto::Sha256 h;
  for (size_t r = 0; r < files_.size(); ++r) {
    if (files_[r].digest.empty())
      return absl::InternalError(
          absl::StrCat("the plan of world rank ", r, " was not written"));
    h.update(&files_[r].bytes, sizeof files_[r].bytes);
    h.update(files_[r].digest);
  }
  id_ = crypto::toHex(h.finish()).substr(0, 32);
  plan::Plan idOnly;
  idOnly.set_compile_id(id_);
  const std::string idField = idOnly.SerializeAsString();
  for (const Written &w : files_) {
    std::ofstream out(w.tmp, std::ios::binary | std::ios::app);
    if (!out || !out.write(idField.data(), idField.size()) || !out.flush())
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write '", w.tmp.string(), "'"));
  }
  std::error_code ec;
  for (const Written &w : files_) {
    fs::rename(w.tmp, w.final, ec);
    if (ec)
      return absl::InternalError(absl::StrCat("cannot rename '", w.tmp.string(),
                                              "' to '", w.final.string(),
                                              "': ", ec.message()));
  }
  committed_ = true;
  return absl::OkStatus();
}

} // namespace galaxy
