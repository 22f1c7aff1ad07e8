"""galaxy-run's stdout line of a generated text (tools/galaxy-run/text_line.h): the
backslash, \\n, \\r, \\t escaped so, the other C0 controls, DEL, the C1 controls and
U+2028 / U+2029 as \\uXXXX; everything else as it is."""


def escape_line(text):
    out = []
    for ch in text:
        o = ord(ch)
        if ch in "\\\n\r\t":
            out.append({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif o < 0x20 or 0x7F <= o <= 0x9F or o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    return "".join(out)
