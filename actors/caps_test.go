package actors

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tubfarm/tubfarm/internal/termsafe"
)

func TestErrorTextCapped(t *testing.T) {
	huge := errors.New(strings.Repeat("\x1b[2J60MB of error ", 4<<20))
	var got string
	allocs := testing.AllocsPerRun(3, func() { got = errorText(huge) })
	if n := utf8.RuneCountInString(got); n > MaxFailureText+1 || !strings.HasSuffix(got, termsafe.Marker) {
		t.Errorf("errorText of a %d-byte error: %d runes, ends %q", len(huge.Error()), n, got[len(got)-8:])
	}
	if strings.ContainsRune(got, 0x1b) {
		t.Error("errorText kept an escape character")
	}
	// The work is bounded by the cap, not by the error's size.
	if allocs > 4*MaxFailureText {
		t.Errorf("%v allocations", allocs)
	}
	if s := errorText(errors.New("refused")); s != "refused" {
		t.Errorf("a short error became %q", s)
	}
}

// nestedDict is a stand-in for a decoded Foolscap dict: a slice of pairs.
type pair struct{ k, v any }

func TestKeepVersionBounded(t *testing.T) {
	small := []pair{{[]byte("application-version"), []byte("tahoe-lafs/1.20")}}
	if keepVersion(small) == nil {
		t.Error("a small answer was not kept")
	}
	big := make([]any, 0, 3<<10)
	for range 3 << 10 {
		big = append(big, []byte(strings.Repeat("v", 1024)))
	}
	if keepVersion(big) != nil {
		t.Error("a 3 MiB answer was kept")
	}
	// Each level refers twice to the one below: 2^60 leaves expanded.
	var shared any = []byte("x")
	for range 60 {
		shared = []any{shared, shared}
	}
	allocs := testing.AllocsPerRun(3, func() {
		if keepVersion(shared) != nil {
			t.Error("an answer of 2^60 leaves was kept")
		}
	})
	if allocs > 16 {
		t.Errorf("%v allocations to measure a shared answer", allocs)
	}
}
