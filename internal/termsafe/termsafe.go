// Package termsafe makes text that came from a peer (a server's nickname,
// version string, FURL hint or error message) safe to print on a terminal or
// write into a log line.
//
// [Clip] replaces every character that could move the cursor, change colours,
// start a new line, or reorder what follows it with a visible escape, and caps
// the length with a visible marker. The rules:
//
//   - C0 controls (U+0000–U+001F), DEL (U+007F) and C1 controls
//     (U+0080–U+009F) become \xNN, or \t, \n, \r for those three. An ANSI
//     escape sequence therefore shows as \x1b[31m and does nothing.
//   - Format characters (Unicode category Cf: the bidi overrides and
//     isolates U+202A–U+202E and U+2066–U+2069, the marks U+200E, U+200F,
//     U+061C, zero-width characters, U+FEFF) and the line and paragraph
//     separators U+2028 and U+2029 become \uNNNN.
//   - A byte that is not part of valid UTF-8 becomes \xNN.
//   - A backslash becomes \\, so an escape in the output always means the
//     input held that character, never the characters of its escape.
//
// Everything else, including printable non-ASCII text, is kept as is.
package termsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Marker ends a clipped string. It is printable and one rune long.
const Marker = "…"

// DefaultMax is the cap [String] applies, in runes of output.
const DefaultMax = 256

// String returns s made safe for a terminal, at most [DefaultMax] runes long
// plus [Marker].
func String(s string) string { return Clip(s, DefaultMax) }

// Error returns err's message made safe as [String] does; "" for nil.
func Error(err error) string {
	if err == nil {
		return ""
	}
	return String(err.Error())
}

// Clip returns s with every unsafe character escaped (see the package
// documentation) and, when the escaped text is longer than max runes, cut
// to at most max runes followed by [Marker]. An escape is never cut in half.
// max <= 0 means no cap.
func Clip(s string, max int) string {
	if max <= 0 {
		max = int(^uint(0) >> 1)
	}
	if safe(s) && utf8.RuneCountInString(s) <= max {
		return s
	}
	var b strings.Builder
	n := 0 // runes written
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := escape(s[i:i+size], r, size)
		i += size
		pn := utf8.RuneCountInString(piece)
		if n+pn > max {
			b.WriteString(Marker)
			return b.String()
		}
		b.WriteString(piece)
		n += pn
	}
	return b.String()
}

// escape returns the output for one input rune r, encoded as raw.
func escape(raw string, r rune, size int) string {
	switch {
	case r == utf8.RuneError && size == 1:
		return fmt.Sprintf(`\x%02x`, raw[0])
	case r == '\\':
		return `\\`
	case r == '\t':
		return `\t`
	case r == '\n':
		return `\n`
	case r == '\r':
		return `\r`
	case r < 0x20 || (r >= 0x7f && r <= 0x9f):
		return fmt.Sprintf(`\x%02x`, r)
	case unsafeFormat(r):
		return fmt.Sprintf(`\u%04x`, r)
	}
	return raw
}

// unsafeFormat reports whether r is an invisible character that can change
// how the text around it is shown.
func unsafeFormat(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

// safe reports whether s needs no escaping at all.
func safe(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\\' || r < 0x20 || (r >= 0x7f && r <= 0x9f) || unsafeFormat(r) {
			return false
		}
		i += size
	}
	return true
}
