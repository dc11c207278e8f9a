package termsafe

import (
	"fmt"
	"unicode/utf8"
)

// JSON returns the JSON text b with every character that [Clip] would
// escape, and that encoding/json leaves as is (C1 controls, DEL, format
// characters such as the bidi overrides, the line and paragraph
// separators), written as a \uNNNN escape instead. Such characters can only
// occur inside JSON strings, where the escape means the same character, so
// the document decodes to the same value and is safe to print on a
// terminal.
func JSON(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r >= 0x7f && r <= 0x9f || r != utf8.RuneError && unsafeFormat(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}
