#include "runtime/io/tensor_source.h"

#include "absl/strings/str_cat.h"

namespace galaxy::io {

void TensorSource::add(const SafetensorsFile &file, std::string prefix) {
  entries_.push_back({&file, std::move(prefix)});
}

const SafetensorsFile *TensorSource::find(std::string_view name,
                                          std::string *nameInFile) const {
  for (const Entry &e : entries_) {
    std::string full = e.prefix + std::string(name);
    if (e.file->find(full)) {
      if (nameInFile)
        *nameInFile = std::move(full);
      return e.file;
    }
  }
  return nullptr;
}

absl::Status TensorSource::readF32Into(std::string_view name,
                                       const std::vector<int64_t> &shape,
                                       const Slice &slice, float *out) const {
  std::string inFile;
  if (const SafetensorsFile *f = find(name, &inFile))
    return f->readF32Into(inFile, shape, slice, out);
  if (entries_.size() == 1) // the single file's own message
    return entries_[0].file->readF32Into(entries_[0].prefix + std::string(name),
                                         shape, slice, out);
  const std::string n(name);
  std::string where;
  for (const Entry &e : entries_)
    absl::StrAppend(&where, where.empty() ? "" : " nor ", "'", e.prefix + n,
                    "' in ", e.file->path());
  return absl::NotFoundError(
      absl::StrCat("missing tensor '", n, "': neither ", where));
}

} // namespace galaxy::io
