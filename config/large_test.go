package config

import (
	"crypto/sha256"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// The package starts no goroutines; this guards against that changing.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const largeN = 100_000

var (
	largeOnce sync.Once
	largeData []byte
)

// largeServers returns a servers.yaml with largeN entries (about 23 MB),
// alternating full v0- entries with a connections override and lazy ones.
func largeServers() []byte {
	largeOnce.Do(func() {
		var b strings.Builder
		b.WriteString("storage:\n")
		for i := range largeN {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(i))
			h := sha256.Sum256(n[:])
			id := "v0-" + base32Enc.EncodeToString(h[:])
			tub := base32Enc.EncodeToString(h[:20])
			b.WriteString("  " + id + ":\n    ann:\n      nickname: server-" + itoa(i) +
				"\n      anonymous-storage-FURL: pb://" + tub + "@tcp:10.0." + itoa(i%250) + ".1:3457,tor:" + tub[:16] + ".onion:3457/" + tub + "\n")
			if i%2 == 0 {
				b.WriteString("    connections:\n      tcp: tor\n")
			}
		}
		largeData = []byte(b.String())
	})
	return largeData
}

func TestLargeServersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "servers.yaml")
	if err := os.WriteFile(path, largeServers(), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadServers(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Servers) != largeN || len(s.Notes) != 0 {
		t.Fatalf("%d servers, notes %d", len(s.Servers), len(s.Notes))
	}
	m, dropped := Merge(nil, nil, s, nil)
	if m.Len() != largeN || len(dropped) != 0 {
		t.Fatalf("map %d dropped %d", m.Len(), len(dropped))
	}
	overridden := 0
	for e := range m.All() {
		if e.Connections != nil {
			overridden++
		}
	}
	if overridden != largeN/2 {
		t.Errorf("%d overrides, want %d", overridden, largeN/2)
	}
}

// BenchmarkParseServers100k parses a 100 000-entry servers.yaml.
func BenchmarkParseServers100k(b *testing.B) {
	data := largeServers()
	cfg := DefaultTahoeConfig()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := ParseServers("servers.yaml", data, cfg)
		if err != nil || len(s.Servers) != largeN {
			b.Fatal(err)
		}
	}
}

// BenchmarkMerge100k merges 100 000 static servers with 100 000
// announcements from two introducers (200 000 in all).
func BenchmarkMerge100k(b *testing.B) {
	s, err := ParseServers("servers.yaml", largeServers(), nil)
	if err != nil {
		b.Fatal(err)
	}
	var announced []Announced
	for i := range largeN {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(i)+1<<40)
		h := sha256.Sum256(n[:])
		a, _ := NewAnnouncement(storageAnn("a", int64(i), "n", furlA))
		for _, intro := range []string{"alpha", "beta"} {
			announced = append(announced, Announced{Introducer: intro, Key: "v0-" + base32Enc.EncodeToString(h[:]), Announcement: a})
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		m, dropped := Merge(nil, announced, s, nil)
		if m.Len() != 2*largeN || len(dropped) != 0 {
			b.Fatal(m.Len(), len(dropped))
		}
	}
}
