package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm/hints"
)

// addFiles adds every file matching the globs as a seed.
func addFiles(f *testing.F, globs ...string) {
	for _, g := range globs {
		files, err := filepath.Glob(g)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}

// checkFileError fails unless err is a *FileError naming path.
func checkFileError(t *testing.T, err error, path string) {
	t.Helper()
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != path || fe.Err == nil {
		t.Fatalf("error %v (%T) is not a *FileError for %s", err, err, path)
	}
}

func FuzzParseTahoeConfig(f *testing.F) {
	addFiles(f, "testdata/bad/*.cfg")
	f.Add([]byte(hideIPExample))
	f.Add([]byte(oldIntroducerExample))
	f.Add([]byte("[x]\nk = a\n\n  b\n  # c\n[y]\nv = %(k)s %%\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseTahoeConfig("t.cfg", data)
		if err != nil {
			checkFileError(t, err, "t.cfg")
			return
		}
		if c == nil || c.Policy.Handlers == nil {
			t.Fatalf("no config and no error")
		}
		if !c.RevealIP && c.Policy.Handlers[hints.KindTCP] == hints.HandlerTCP {
			t.Fatalf("reveal-IP-address = false accepted with tcp = tcp")
		}
		if c.IntroducerFURL != "" {
			if _, err := hints.ParseFURL(c.IntroducerFURL); err != nil {
				t.Fatalf("accepted bad introducer FURL: %v", err)
			}
		}
	})
}

func FuzzParseIntroducers(f *testing.F) {
	addFiles(f, "testdata/bad/introducers-*.yaml", "testdata/good/introducers.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		intros, err := ParseIntroducers("i.yaml", data)
		if err != nil {
			checkFileError(t, err, "i.yaml")
			return
		}
		for i, in := range intros {
			if checkPetname(in.Petname) != nil || in.Line == 0 {
				t.Fatalf("bad introducer %+v", in)
			}
			if i > 0 && intros[i-1].Petname >= in.Petname {
				t.Fatalf("not sorted/unique: %q, %q", intros[i-1].Petname, in.Petname)
			}
			if g, err := hints.ParseFURL(in.RawFURL); err != nil || !g.Equal(in.FURL) {
				t.Fatalf("FURL %q: %v", in.RawFURL, err)
			}
		}
	})
}

func FuzzParseCache(f *testing.F) {
	addFiles(f, "testdata/bad/cache-*.yaml", "testdata/good/tahoe_cache.yaml")
	s := mustSign(f, testKey(1), storageAnn("s1", 3, "n1", furlA))
	if data, err := MarshalCache([]CacheEntry{{Signed: &s}}); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCache("c.yaml", data)
		if err != nil {
			checkFileError(t, err, "c.yaml")
			return
		}
		for _, d := range c.Dropped {
			checkFileError(t, d, "c.yaml")
		}
		// Round trip: what we accepted, we can write and read back
		// unchanged.
		out, err := MarshalCache(c.Entries)
		if err != nil {
			t.Fatalf("cannot marshal accepted entries: %v", err)
		}
		c2, err := ParseCache("c.yaml", out)
		if err != nil || len(c2.Entries) != len(c.Entries) || len(c2.Dropped) != 0 {
			t.Fatalf("round trip: %v, %d vs %d entries, dropped %v\n%s", err, len(c2.Entries), len(c.Entries), c2.Dropped, out)
		}
		for i := range c.Entries {
			a, b := c.Entries[i], c2.Entries[i]
			if a.Key != b.Key || !a.Announcement.Equal(b.Announcement) || a.Verified() != b.Verified() {
				t.Fatalf("entry %d changed in round trip: %+v vs %+v", i, a, b)
			}
		}
	})
}

func FuzzParseServers(f *testing.F) {
	addFiles(f, "testdata/bad/servers-*.yaml", "testdata/good/servers.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseServers("s.yaml", data, nil)
		if err != nil {
			checkFileError(t, err, "s.yaml")
			return
		}
		for _, n := range s.Notes {
			checkFileError(t, n, "s.yaml")
		}
		if !slices.IsSortedFunc(s.Servers, func(a, b StaticServer) int { return strings.Compare(a.ID, b.ID) }) {
			t.Fatal("servers not sorted")
		}
		for i, srv := range s.Servers {
			if i > 0 && s.Servers[i-1].ID == srv.ID {
				t.Fatalf("duplicate id %q", srv.ID)
			}
			if g, err := hints.ParseFURL(srv.Announcement.FURL); err != nil || !g.Equal(srv.FURL) || srv.PermutationSeed == nil {
				t.Fatalf("server %+v: %v", srv, err)
			}
		}
		m, dropped := Merge(nil, nil, s, nil)
		if m.Len() != len(s.Servers) || len(dropped) != 0 {
			t.Fatalf("merge: %d vs %d, %v", m.Len(), len(s.Servers), dropped)
		}
	})
}
