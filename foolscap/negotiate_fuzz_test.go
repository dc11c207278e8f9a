package foolscap

import (
	"bytes"
	"maps"
	"strings"
	"testing"
)

// The committed corpora under testdata/fuzz/ hold the real captures of
// docs/foolscap-protocol.md §3 and §7 (hellos, decision, error block, upgrade
// request and responses); f.Add adds a few edge cases.

// FuzzParseBlock checks that parseBlock never panics and that whatever it
// accepts re-encodes (sorted, "key: value") to a block that parses to the
// same map.
func FuzzParseBlock(f *testing.F) {
	f.Add([]byte("a:b"))
	f.Add([]byte("A:\r\nb: \t c"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.TrimSuffix(b, blockEnd)
		m, err := parseBlock(b)
		if err != nil {
			return
		}
		enc := appendBlock(nil, m)
		if len(enc) > MaxBlockSize {
			return
		}
		m2, err := parseBlock(enc[:len(enc)-len(blockEnd)])
		if err != nil {
			t.Fatalf("re-encoded block %q does not parse: %v", enc, err)
		}
		if !maps.Equal(m, m2) {
			t.Fatalf("round trip: %q -> %v -> %q -> %v", b, m, enc, m2)
		}
	})
}

// FuzzReadBlock checks that readBlock, fed one arbitrary stream, returns
// exactly the bytes before the first blank line and consumes nothing after
// it, or fails having consumed at most MaxBlockSize bytes.
func FuzzReadBlock(f *testing.F) {
	f.Add([]byte("a: b\r\n\r\nrest"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &countingReader{data: b}
		got, err := readBlock(r, MaxBlockSize)
		i := bytes.Index(b, blockEnd)
		if err != nil {
			if i >= 0 && i+len(blockEnd) <= MaxBlockSize {
				t.Fatalf("error %v, but a block ends at %d", err, i)
			}
			if r.consumed > MaxBlockSize {
				t.Fatalf("consumed %d bytes past the limit", r.consumed)
			}
			return
		}
		if i < 0 || !bytes.Equal(got, b[:i]) || r.consumed != i+len(blockEnd) {
			t.Fatalf("got %q consuming %d of %q", got, r.consumed, b)
		}
	})
}

// FuzzParseUpgradeRequest checks the server's request parser never panics
// and that a TubID it returns survives being put back into a request.
func FuzzParseUpgradeRequest(f *testing.F) {
	f.Add([]byte("GET /id/ HTTP/1.1"))
	f.Add([]byte("GET / HTTP/1.0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.TrimSuffix(b, blockEnd)
		id, err := parseUpgradeRequest(b)
		if err != nil || strings.ContainsAny(id, " \t\r\n\v\f\u0085\u00a0") || !isPrintableASCII(id) {
			return
		}
		req := upgradeRequest(id, "127.0.0.1")
		id2, err := parseUpgradeRequest(req[:len(req)-len(blockEnd)])
		if err != nil || id2 != id {
			t.Fatalf("tubid %q -> request %q -> %q, %v", id, req, id2, err)
		}
	})
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// FuzzParseUpgradeResponse checks the client's response parser never
// panics and accepts only a 101 that offers TLS.
func FuzzParseUpgradeResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 101 x\r\nUpgrade: TLS/1.0"))
	f.Add([]byte("HTTP/1.1 500 Internal Server Error: "))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.TrimSuffix(b, blockEnd)
		if parseUpgradeResponse(b) != nil {
			return
		}
		first, _, _ := bytes.Cut(b, []byte("\r\n"))
		if f := bytes.Fields(first); len(f) < 2 || string(f[1]) != "101" || !bytes.Contains(b, upgradeHeader) {
			t.Fatalf("accepted %q", b)
		}
	})
}
