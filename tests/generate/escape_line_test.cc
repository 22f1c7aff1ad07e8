// galaxy-run prints each generated row on one line (tools/galaxy-run/
// text_line.h): every character a line reader breaks at is escaped, the
// backslash too, so the escaping is undone unambiguously.
#include "tools/galaxy-run/text_line.h"

#include "gtest/gtest.h"

namespace galaxy::run {
namespace {

TEST(GeneratedTextLine, PlainTextIsUnchanged) {
  EXPECT_EQ(escapeLine(""), "");
  EXPECT_EQ(escapeLine("Hello, world \"quoted\" naïve 日本 😀"),
            "Hello, world \"quoted\" naïve 日本 😀");
}

TEST(GeneratedTextLine, LineBreaksAndControlsAreEscaped) {
  EXPECT_EQ(escapeLine("a\nb"), "a\\nb");
  EXPECT_EQ(escapeLine("a\r\nb\tc"), "a\\r\\nb\\tc");
  EXPECT_EQ(escapeLine("back\\slash"), "back\\\\slash");
  // The backslash escaped first: a literal "\n" stays two characters apart
  // from a newline.
  EXPECT_EQ(escapeLine("\\n"), "\\\\n");
  EXPECT_EQ(escapeLine(std::string("nul\0x", 5)), "nul\\u0000x");
  EXPECT_EQ(escapeLine("\x0b\x0c\x1b\x1c\x1d\x1e\x1f\x7f"),
            "\\u000b\\u000c\\u001b\\u001c\\u001d\\u001e\\u001f\\u007f");
  // C1 controls (NEL U+0085 breaks lines for Python's str.splitlines), the
  // line and paragraph separators.
  EXPECT_EQ(escapeLine("a\u0085b\u0080c\u009f"), "a\\u0085b\\u0080c\\u009f");
  EXPECT_EQ(escapeLine("a\u2028b\u2029c"), "a\\u2028b\\u2029c");
  // Their neighbours are text: U+00A0, U+2027, U+202A.
  EXPECT_EQ(escapeLine("\u00a0\u2027\u202a"), "\u00a0\u2027\u202a");
}

TEST(GeneratedTextLine, BytesThatAreNotUtf8AreKept) {
  // A lone C2 or E2 80 at the end is no control: kept byte for byte.
  EXPECT_EQ(escapeLine("x\xc2"), "x\xc2");
  EXPECT_EQ(escapeLine("x\xe2\x80"), "x\xe2\x80");
  EXPECT_EQ(escapeLine("\xff\xfe"), "\xff\xfe");
}

} // namespace
} // namespace galaxy::run
