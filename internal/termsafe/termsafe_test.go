package termsafe

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain", "storage-1", 0, "storage-1"},
		{"unicode kept", "sérveur ☃ 東京", 0, "sérveur ☃ 東京"},
		{"ansi colour", "\x1b[31mred\x1b[0m", 0, `\x1b[31mred\x1b[0m`},
		{"clear screen", "\x1b[2J\x1b[H", 0, `\x1b[2J\x1b[H`},
		{"newline and cr", "a\nb\rc\td", 0, `a\nb\rc\td`},
		{"nul and bell", "a\x00b\x07", 0, `a\x00b\x07`},
		{"del", "a\x7fb", 0, `a\x7fb`},
		{"c1 csi", "a\u009b31mb", 0, `a\x9b31mb`},
		{"c1 nel", "a\u0085b", 0, `a\x85b`},
		{"bidi override", "abc\u202edcba", 0, `abc\u202edcba`},
		{"bidi isolate", "\u2066x\u2069", 0, `\u2066x\u2069`},
		{"rlm and alm", "\u200f\u061c", 0, `\u200f\u061c`},
		{"zero width and bom", "a\u200bb\ufeff", 0, `a\u200bb\ufeff`},
		{"line separator", "a\u2028b\u2029", 0, `a\u2028b\u2029`},
		{"invalid utf8", "a\xffb\xc3", 0, `a\xffb\xc3`},
		{"backslash", `C:\x1b`, 0, `C:\\x1b`},
		{"fits exactly", "abcde", 5, "abcde"},
		{"clipped", "abcdef", 5, "abcde" + Marker},
		{"clipped unicode", "ééééé", 3, "ééé" + Marker},
		{"escape not cut", "ab\x1b", 4, "ab" + Marker},
		{"escape fits", "ab\x1b", 6, `ab\x1b`},
		{"empty", "", 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Clip(tt.in, tt.max); got != tt.want {
				t.Errorf("Clip(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
		})
	}
}

func TestStringCapsAtDefault(t *testing.T) {
	got := String(strings.Repeat("x", 10*DefaultMax))
	if want := strings.Repeat("x", DefaultMax) + Marker; got != want {
		t.Errorf("String(long) has %d runes, want %d", utf8.RuneCountInString(got), utf8.RuneCountInString(want))
	}
}

func TestError(t *testing.T) {
	if got := Error(nil); got != "" {
		t.Errorf("Error(nil) = %q", got)
	}
	if got, want := Error(errors.New("dial tor:x.onion:1: \x1b]0;pwned\x07")), `dial tor:x.onion:1: \x1b]0;pwned\x07`; got != want {
		t.Errorf("Error = %q, want %q", got, want)
	}
}

func FuzzClip(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[31m", "a\u202eb", "\xff\xfe", `\\`, "é\u0085\u2028", strings.Repeat("\x00", 40)} {
		f.Add(s, 0)
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max %= 64 // keep small caps common, and allow 0 and negatives (no cap)
		got := Clip(s, max)
		if !utf8.ValidString(got) {
			t.Fatalf("Clip(%q, %d) = %q is not valid UTF-8", s, max, got)
		}
		for _, r := range got {
			if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
				t.Fatalf("Clip(%q, %d) = %q holds %U", s, max, got, r)
			}
		}
		if max > 0 && utf8.RuneCountInString(got) > max+utf8.RuneCountInString(Marker) {
			t.Fatalf("Clip(%q, %d) = %q has %d runes", s, max, got, utf8.RuneCountInString(got))
		}
		if max <= 0 && strings.HasSuffix(got, Marker) && !strings.HasSuffix(s, Marker) {
			t.Fatalf("Clip(%q, %d) = %q was clipped without a cap", s, max, got)
		}
	})
}
