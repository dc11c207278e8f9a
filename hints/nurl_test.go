package hints

import (
	"errors"
	"strings"
	"testing"
)

const testHash = "W7_talv9awyovED_ICKrQWBIWPs6bNcv9E8yiLkqjLk"
const testSwiss = "qtjhmoxpa62xxpyasjiwo4h3eswv2t4z"

func TestParseNURL(t *testing.T) {
	good := []struct {
		in   string
		tor  bool
		addr string
	}{
		{"pb://" + testHash + "@127.0.0.1:47101/" + testSwiss + "#v=1", false, "127.0.0.1:47101"},
		{"pb://" + testHash + "@example.org:1/" + testSwiss + "#v=1", false, "example.org:1"},
		{"pb://" + testHash + "@[::1]:443/" + testSwiss + "#v=1", false, "[::1]:443"},
		{"pb+tor://" + testHash + "@abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion:80/" + testSwiss + "#v=1", true, "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion:80"},
	}
	for _, tc := range good {
		n, err := ParseNURL(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if n.Tor != tc.tor || n.Addr() != tc.addr || n.SPKIHash != testHash || n.Swissnum != testSwiss {
			t.Errorf("%s: %+v", tc.in, n)
		}
		if n.String() != tc.in {
			t.Errorf("String() = %q, want %q", n.String(), tc.in)
		}
		if strings.Contains(n.Redacted(), testSwiss) {
			t.Errorf("Redacted() shows the swissnum: %s", n.Redacted())
		}
	}
	bad := []string{
		"",
		"pb://" + testHash + "@127.0.0.1:47101/" + testSwiss,               // no fragment
		"pb://" + testHash + "@127.0.0.1:47101/" + testSwiss + "#v=2",      // wrong version
		"https://" + testHash + "@127.0.0.1:47101/" + testSwiss + "#v=1",   // scheme
		"pb://" + testHash[:42] + "@127.0.0.1:47101/" + testSwiss + "#v=1", // short hash
		"pb://" + testHash + "=@127.0.0.1:47101/" + testSwiss + "#v=1",     // padded
		"pb://" + strings.Repeat("+", 43) + "@127.0.0.1:47101/" + testSwiss + "#v=1",
		"pb://" + testHash + "@tcp:127.0.0.1:47101/" + testSwiss + "#v=1",              // a hint, not host:port
		"pb://" + testHash + "@127.0.0.1:1,127.0.0.2:2/" + testSwiss + "#v=1",          // two
		"pb://" + testHash + "@127.0.0.1/" + testSwiss + "#v=1",                        // no port
		"pb://" + testHash + "@127.0.0.1:70000/" + testSwiss + "#v=1",                  // port range
		"pb://" + testHash + "@127.0.0.1:47101/" + strings.ToUpper(testSwiss) + "#v=1", // swissnum case
		"pb://" + testHash + "@127.0.0.1:47101/#v=1",                                   // no swissnum
		"pb://" + testHash + "@127.0.0.1:47101/a/b#v=1",
		"pb+tor://" + testHash + "@[::1]:80/" + testSwiss + "#v=1", // IPv6 through Tor
		"pb://" + testHash + "@127.0.0.1:47101/" + testSwiss + "#v=1\xff",
	}
	for _, in := range bad {
		_, err := ParseNURL(in)
		if !errors.Is(err, ErrNURLSyntax) {
			t.Errorf("%q: %v, want ErrNURLSyntax", in, err)
			continue
		}
		if strings.Contains(err.Error(), testSwiss) {
			t.Errorf("error shows the swissnum: %v", err)
		}
	}
}

func FuzzParseNURL(f *testing.F) {
	f.Add("pb://" + testHash + "@127.0.0.1:47101/" + testSwiss + "#v=1")
	f.Add("pb+tor://" + testHash + "@x.onion:80/" + testSwiss + "#v=1")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNURL(s)
		if err != nil {
			return
		}
		again, err := ParseNURL(n.String())
		if err != nil || again != n {
			t.Fatalf("%q: round trip gave %+v, %v", s, again, err)
		}
	})
}
