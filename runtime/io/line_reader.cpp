#include "runtime/io/line_reader.h"

#include "absl/strings/str_format.h"

namespace galaxy::io {

absl::StatusOr<bool> readLine(std::istream &in, std::string &line,
                              const std::string &file, int64_t lineNo,
                              size_t maxBytes) {
  line.clear();
  std::streambuf *buf = in.rdbuf();
  if (!buf || !in.good())
    return false;
  bool any = false;
  while (true) {
    int c;
    try {
      c = buf->sbumpc();
    } catch (...) { // a filebuf whose read(2) failed (EISDIR, EIO)
      c = std::char_traits<char>::eof();
      in.setstate(std::ios::badbit);
    }
    if (c == std::char_traits<char>::eof()) {
      in.setstate(std::ios::eofbit);
      if (in.bad())
        return absl::InvalidArgumentError(
            absl::StrFormat("%s:%d: reading failed", file, lineNo));
      return any;
    }
    any = true;
    if (c == '\n')
      return true;
    if (line.size() >= maxBytes)
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s:%d: the line is longer than %d bytes; is %s a text file (one "
          "row a line)?",
          file, lineNo, maxBytes, file));
    line.push_back(static_cast<char>(c));
  }
}

} // namespace galaxy::io
