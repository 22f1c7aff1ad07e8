#include "tools/galaxy-run/text_line.h"

#include "absl/strings/str_format.h"

namespace galaxy::run {

std::string escapeLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const size_t n = text.size();
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = byte(i);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += absl::StrFormat("\\u%04x", c);
    } else if (c == 0xc2 && i + 1 < n && byte(i + 1) >= 0x80 &&
               byte(i + 1) <= 0x9f) {
      // A C1 control (UTF-8 C2 80..C2 9F): U+0085 NEL is a line break.
      out += absl::StrFormat("\\u%04x", byte(i + 1));
      ++i;
    } else if (c == 0xe2 && i + 2 < n && byte(i + 1) == 0x80 &&
               (byte(i + 2) == 0xa8 || byte(i + 2) == 0xa9)) {
      // U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR.
      out += byte(i + 2) == 0xa8 ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

} // namespace galaxy::run
