package hints

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const (
	tub32 = "u33m4y7klhz3bypswqkozwetvabelhxt"
	swiss = "eiu2i7p6d6mm4ihmss7ieou5hac3wn6b"
)

// furlTests covers every FURL form of docs/foolscap-protocol.md §1.1. Error messages
// are checked exactly; FURLError.Error hides the NAME.
var furlTests = []struct {
	name    string
	in      string
	want    FURL
	wantErr string // exact Error() text
	is      error  // sentinel the error must match
}{
	{
		name: "one tcp hint",
		in:   "pb://" + tub32 + "@tcp:8.8.8.8:51298/" + swiss,
		want: FURL{TubID: tub32, Hints: []string{"tcp:8.8.8.8:51298"}, Name: swiss},
	},
	{
		name: "several hints of every kind",
		in:   "pb://" + tub32 + "@127.0.0.1:1234,tcp:[::1]:1,tor:abc.onion:80,i2p:abc.b32.i2p,foo:bar:1/" + swiss,
		want: FURL{TubID: tub32, Hints: []string{"127.0.0.1:1234", "tcp:[::1]:1", "tor:abc.onion:80", "i2p:abc.b32.i2p", "foo:bar:1"}, Name: swiss},
	},
	{
		name: "empty hint list parses",
		in:   "pb://" + tub32 + "@/" + swiss,
		want: FURL{TubID: tub32, Hints: []string{}, Name: swiss},
	},
	{
		name:    "empty hint element",
		in:      "pb://" + tub32 + "@a:1,,b:2/" + swiss,
		wantErr: `hints: parse FURL "pb://` + tub32 + `@a:1,,b:2/REDACTED": no connection hint may be empty`,
		is:      ErrEmptyHint,
	},
	{
		name:    "trailing empty hint element",
		in:      "pb://" + tub32 + "@a:1,/" + swiss,
		wantErr: `hints: parse FURL "pb://` + tub32 + `@a:1,/REDACTED": no connection hint may be empty`,
		is:      ErrEmptyHint,
	},
	{
		name:    "lone comma",
		in:      "pb://" + tub32 + "@,/" + swiss,
		wantErr: `hints: parse FURL "pb://` + tub32 + `@,/REDACTED": no connection hint may be empty`,
		is:      ErrEmptyHint,
	},
	{
		name:    "pbu scheme",
		in:      "pbu://" + tub32 + "@tcp:h:1/" + swiss,
		wantErr: `hints: parse FURL "pbu://` + tub32 + `@tcp:h:1/REDACTED": unknown FURL prefix`,
		is:      ErrFURLSyntax,
	},
	{
		name:    "text before the scheme (Foolscap's unanchored search accepts it)",
		in:      "xpb://" + tub32 + "@tcp:h:1/" + swiss,
		wantErr: `hints: parse FURL "xpb://` + tub32 + `@tcp:h:1/REDACTED": unknown FURL prefix`,
		is:      ErrFURLSyntax,
	},
	{
		name:    "empty name",
		in:      "pb://" + tub32 + "@tcp:h:1/",
		wantErr: `hints: parse FURL "pb://` + tub32 + `@tcp:h:1/": unknown FURL prefix`,
		is:      ErrFURLSyntax,
	},
	{
		name:    "no name separator",
		in:      "pb://" + tub32 + "@tcp:h:1",
		wantErr: `hints: parse FURL "pb://` + tub32 + `@tcp:h:1": unknown FURL prefix`,
		is:      ErrFURLSyntax,
	},
	{
		name:    "no at sign",
		in:      "pb://" + tub32 + "/" + swiss,
		wantErr: `hints: parse FURL "pb://` + tub32 + `/` + swiss + `": unknown FURL prefix`,
		is:      ErrFURLSyntax,
	},
	{
		name:    "empty tubid",
		in:      "pb://@tcp:h:1/" + swiss,
		wantErr: `hints: parse FURL "pb://@tcp:h:1/REDACTED": unknown FURL prefix`,
		is:      ErrFURLSyntax,
	},
	{
		name:    "empty string",
		in:      "",
		wantErr: `hints: parse FURL "": unknown FURL prefix`,
		is:      ErrFURLSyntax,
	},
	{
		name: "tubid longer than 32 is truncated",
		in:   "pb://" + tub32 + "extension-data!@tcp:h:1/" + swiss,
		want: FURL{TubID: tub32, Hints: []string{"tcp:h:1"}, Name: swiss},
	},
	{
		name: "short tubid passes",
		in:   "pb://abc@tcp:h:1/" + swiss,
		want: FURL{TubID: "abc", Hints: []string{"tcp:h:1"}, Name: swiss},
	},
	{
		name: "upper-case tubid is kept as written",
		in:   "pb://" + strings.ToUpper(tub32) + "@tcp:h:1/" + swiss,
		want: FURL{TubID: strings.ToUpper(tub32), Hints: []string{"tcp:h:1"}, Name: swiss},
	},
	{
		name:    "tubid outside base32",
		in:      "pb://" + tub32[:31] + "1@tcp:h:1/" + swiss,
		wantErr: `hints: parse FURL "pb://` + tub32[:31] + `1@tcp:h:1/REDACTED": "` + tub32[:31] + `1" is not a valid tubid`,
		is:      ErrBadTubID,
	},
	{
		name:    "tubid with padding",
		in:      "pb://abc=@tcp:h:1/" + swiss,
		wantErr: `hints: parse FURL "pb://abc=@tcp:h:1/REDACTED": "abc=" is not a valid tubid`,
		is:      ErrBadTubID,
	},
	{
		name:    "non-ASCII tubid",
		in:      "pb://a\u00e9@tcp:h:1/" + swiss,
		wantErr: "hints: parse FURL \"pb://a\u00e9@tcp:h:1/REDACTED\": \"a\u00e9\" is not a valid tubid",
		is:      ErrBadTubID,
	},
	{
		name: "name containing slashes",
		in:   "pb://" + tub32 + "@tcp:h:1/a/b/c",
		want: FURL{TubID: tub32, Hints: []string{"tcp:h:1"}, Name: "a/b/c"},
	},
	{
		name: "name containing at and comma",
		in:   "pb://" + tub32 + "@tcp:h:1/a@b,c",
		want: FURL{TubID: tub32, Hints: []string{"tcp:h:1"}, Name: "a@b,c"},
	},
	{
		name: "hint containing an at sign",
		in:   "pb://" + tub32 + "@a@b/" + swiss,
		want: FURL{TubID: tub32, Hints: []string{"a@b"}, Name: swiss},
	},
	{
		name: "one trailing newline is ignored, like Python's $",
		in:   "pb://" + tub32 + "@tcp:h:1/" + swiss + "\n",
		want: FURL{TubID: tub32, Hints: []string{"tcp:h:1"}, Name: swiss},
	},
	{
		name:    "newline inside the name",
		in:      "pb://" + tub32 + "@tcp:h:1/a\nb",
		wantErr: `hints: parse FURL "pb://` + tub32 + `@tcp:h:1/REDACTED": unknown FURL prefix`,
		is:      ErrFURLSyntax,
	},
	{
		name:    "two trailing newlines",
		in:      "pb://" + tub32 + "@tcp:h:1/a\n\n",
		wantErr: `hints: parse FURL "pb://` + tub32 + `@tcp:h:1/REDACTED": unknown FURL prefix`,
		is:      ErrFURLSyntax,
	},
	{
		name: "newline inside a hint is kept",
		in:   "pb://" + tub32 + "@h:1\n/" + swiss,
		want: FURL{TubID: tub32, Hints: []string{"h:1\n"}, Name: swiss},
	},
	{
		name:    "invalid UTF-8",
		in:      "pb://" + tub32 + "@tcp:h:1/\xff",
		wantErr: `hints: parse FURL "pb://` + tub32 + `@tcp:h:1/REDACTED": not valid UTF-8`,
		is:      ErrNotUTF8,
	},
}

func TestParseFURL(t *testing.T) {
	for _, tt := range furlTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFURL(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseFURL(%q) = %#v, want error %q", tt.in, got, tt.wantErr)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("ParseFURL(%q) error:\n got %s\nwant %s", tt.in, err, tt.wantErr)
				}
				var fe *FURLError
				if !errors.As(err, &fe) || fe.FURL != tt.in {
					t.Errorf("error %#v is not a *FURLError with FURL = input", err)
				}
				if !errors.Is(err, tt.is) {
					t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
				}
				if !reflectZero(got) {
					t.Errorf("ParseFURL returned %#v with an error, want zero FURL", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFURL(%q): %v", tt.in, err)
			}
			if !got.Equal(tt.want) || got.Hints == nil {
				t.Fatalf("ParseFURL(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			again, err := ParseFURL(got.String())
			if err != nil || !again.Equal(got) {
				t.Errorf("ParseFURL(%q) = %#v, %v; want round trip to %#v", got.String(), again, err, got)
			}
		})
	}
}

func reflectZero(f FURL) bool { return f.TubID == "" && f.Hints == nil && f.Name == "" }

func TestFURLString(t *testing.T) {
	tests := []struct {
		f    FURL
		want string
	}{
		{FURL{TubID: tub32, Hints: []string{"tcp:a:1", "b:2"}, Name: "x/y"}, "pb://" + tub32 + "@tcp:a:1,b:2/x/y"},
		{FURL{TubID: tub32, Hints: []string{}, Name: "n"}, "pb://" + tub32 + "@/n"},
		{FURL{TubID: tub32, Name: "n"}, "pb://" + tub32 + "@/n"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestFURLRedacted(t *testing.T) {
	f := FURL{TubID: tub32, Hints: []string{"tcp:a:1"}, Name: swiss}
	got := f.Redacted()
	if want := "pb://" + tub32 + "@tcp:a:1/REDACTED"; got != want {
		t.Errorf("Redacted() = %q, want %q", got, want)
	}
	if strings.Contains(got, swiss) {
		t.Errorf("Redacted() %q contains the swissnum", got)
	}
	_, err := ParseFURL("pb://" + tub32 + "@a,,b/" + swiss)
	if err == nil || strings.Contains(err.Error(), swiss) {
		t.Errorf("error %v shows the swissnum", err)
	}
}

func TestFURLEqual(t *testing.T) {
	a := FURL{TubID: "a", Hints: []string{"x", "y"}, Name: "n"}
	for _, b := range []FURL{
		{TubID: "b", Hints: []string{"x", "y"}, Name: "n"},
		{TubID: "a", Hints: []string{"y", "x"}, Name: "n"},
		{TubID: "a", Hints: []string{"x"}, Name: "n"},
		{TubID: "a", Hints: []string{"x", "y"}, Name: "m"},
	} {
		if a.Equal(b) {
			t.Errorf("%#v.Equal(%#v) = true", a, b)
		}
	}
	if !a.Equal(FURL{TubID: "a", Hints: slices.Clone(a.Hints), Name: "n"}) {
		t.Error("Equal(copy) = false")
	}
}

func FuzzParseFURL(f *testing.F) {
	for _, tt := range furlTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseFURL(s)
		if err != nil {
			var fe *FURLError
			if !errors.As(err, &fe) || fe.FURL != s {
				t.Fatalf("ParseFURL(%q) error %v is not a *FURLError for the input", s, err)
			}
			return
		}
		if u.Name == "" || len(u.TubID) == 0 || len(u.TubID) > TubIDLen || u.Hints == nil {
			t.Fatalf("ParseFURL(%q) = %#v: invalid result", s, u)
		}
		for _, h := range u.Hints {
			if h == "" || strings.ContainsAny(h, ",/") {
				t.Fatalf("ParseFURL(%q): bad hint %q", s, h)
			}
		}
		out := u.String()
		again, err := ParseFURL(out)
		if err != nil {
			t.Fatalf("ParseFURL(%q) -> %q does not re-parse: %v", s, out, err)
		}
		if !again.Equal(u) {
			t.Fatalf("round trip of %q: %#v != %#v", s, again, u)
		}
		if again.String() != out {
			t.Fatalf("String not stable: %q != %q", again.String(), out)
		}
	})
}

func BenchmarkParseFURL(b *testing.B) {
	s := "pb://" + tub32 + "@tcp:10.1.2.3:51298,tor:abcdefghijklmnop.onion:3457/" + swiss
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFURL(s); err != nil {
			b.Fatal(err)
		}
	}
}
