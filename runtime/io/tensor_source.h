// Parameters read from more than one safetensors file: galaxy-run
// --init-adapter takes the LoRA factors (and the trained task head) from a
// PEFT adapter folder and every other weight from --init.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "runtime/io/safetensors.h"

namespace galaxy::io {

class TensorSource {
public:
  TensorSource() = default;
  // One file, names as they are (what loading a single --init means).
  explicit TensorSource(const SafetensorsFile &file) { add(file); }

  // Looks tensor N up as `prefix` + N in `file` (not owned; must outlive the
  // source). Files added first win.
  void add(const SafetensorsFile &file, std::string prefix = "");

  // The file that holds `name` (and its name there), or nullptr.
  const SafetensorsFile *find(std::string_view name,
                              std::string *nameInFile = nullptr) const;

  // SafetensorsFile::readF32Into from the first file holding `name`; when
  // none does, NotFound naming every file looked in.
  absl::Status readF32Into(std::string_view name,
                           const std::vector<int64_t> &expectedShape,
                           const Slice &slice, float *out) const;

private:
  struct Entry {
    const SafetensorsFile *file;
    std::string prefix;
  };
  std::vector<Entry> entries_;
};

} // namespace galaxy::io
