// Every file galaxy-run writes, checked before the first step (so a typo in
// --save costs no training run), and the atomic text writes (--eval-out,
// --profile-json, --profile-svg).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tools/galaxy-run/common.h"

namespace galaxy::run {

struct OutputPath {
  std::string flag, path;
};

// The output files given, in command-line order of the usage text
// (--save-adapter DIR: its two files).
std::vector<OutputPath> outputPaths(const Args &args);

// Fails (exit 2) naming the flag and the path unless every output's
// directory exists and is writable and the target is absent or a regular
// file, and no two outputs name the same file. A device, FIFO, socket or
// directory is refused: galaxy-run replaces the file it writes, which would
// replace the node. A symbolic link is refused too, naming what it points
// to: the rename would replace the link, not write where it points, and
// following it could write outside the directory the user looked at.
void checkOutputs(const Args &args);
// The same checks for one file (galaxy-run --calibrate's -o).
void checkOutput(const OutputPath &output);

// io::writeTextAtomically (runtime/io/text_file.h).
absl::Status writeTextAtomically(const std::string &path,
                                 const std::string &text);

} // namespace galaxy::run
