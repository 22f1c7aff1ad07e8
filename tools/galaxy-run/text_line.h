// One row of generated text as one line of stdout: a newline (or another line
// break) the model generates must not split a row in two, so that line i of
// the output is row i (docs/inference.md, "Generated text on stdout").
#pragma once

#include <string>
#include <string_view>

namespace galaxy::run {

// `text` with the backslash and every character a line reader could break at
// escaped as in a JSON string: \\, \n, \r, \t; the other C0 controls, DEL and
// the C1 controls (U+0080..U+009F, NEL among them) as \u00xx; U+2028 and
// U+2029 as \u2028, \u2029. Everything else, other UTF-8 and bytes that are
// not UTF-8 alike, is kept as it is. The quote is not escaped: '"' + line
// with each '"' escaped + '"' is the JSON string of `text`.
std::string escapeLine(std::string_view text);

} // namespace galaxy::run
