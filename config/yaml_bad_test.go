package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm/hints"
)

// loadBadYAML loads a testdata/bad YAML file with the loader its name
// prefix selects: introducers-*, servers-* (servers-private-* with the
// hide-IP tahoe.cfg), cache-*.
func loadBadYAML(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	name := filepath.Base(path)
	switch {
	case strings.HasPrefix(name, "introducers-"):
		_, err = ParseIntroducers(path, data)
	case strings.HasPrefix(name, "servers-private-"):
		cfg, cerr := ParseTahoeConfig("tahoe.cfg", []byte(hideIPExample))
		if cerr != nil {
			return cerr
		}
		_, err = ParseServers(path, data, cfg)
	case strings.HasPrefix(name, "servers-"):
		_, err = ParseServers(path, data, nil)
	case strings.HasPrefix(name, "cache-"):
		_, err = ParseCache(path, data)
	default:
		return errors.New("no loader for " + name)
	}
	return err
}

// badYAMLFiles is the expected-error table for testdata/bad/*.yaml. Every
// file in that directory must be listed here, and vice versa.
var badYAMLFiles = []struct {
	file  string
	class error
	msg   string
}{
	{"cache-empty.yaml", ErrEmptyDocument,
		"config: testdata/bad/cache-empty.yaml: cache file is empty; it must be a list"},
	{"cache-mapping.yaml", ErrType,
		"config: testdata/bad/cache-mapping.yaml:1: cache must be a list, not a mapping"},
	{"cache-scalar.yaml", ErrType,
		"config: testdata/bad/cache-scalar.yaml:1: cache must be a list, not a string"},
	{"introducers-bad-furl.yaml", ErrInvalidValue,
		"config: testdata/bad/introducers-bad-furl.yaml:3: introducers.grid.furl: hints: parse FURL \"pb://ok45ssoklj4y7eok5c3xkmj@tcp:a,,b/REDACTED\": no connection hint may be empty"},
	{"introducers-comment-only.yaml", ErrEmptyDocument,
		"config: testdata/bad/introducers-comment-only.yaml: file is empty; remove it or define introducers"},
	{"introducers-duplicate.yaml", ErrDuplicate,
		"config: testdata/bad/introducers-duplicate.yaml:4: introducers.grid: key already defined at line 2"},
	{"introducers-empty.yaml", ErrEmptyDocument,
		"config: testdata/bad/introducers-empty.yaml: file is empty; remove it or define introducers"},
	{"introducers-entry-list.yaml", ErrType,
		"config: testdata/bad/introducers-entry-list.yaml:2: introducers.grid: must be a mapping, not a list"},
	{"introducers-furl-int.yaml", ErrType,
		"config: testdata/bad/introducers-furl-int.yaml:3: introducers.grid.furl: must be a string, not an integer"},
	{"introducers-list.yaml", ErrType,
		"config: testdata/bad/introducers-list.yaml:1: must be a mapping, not a list"},
	{"introducers-no-furl.yaml", ErrMissing,
		"config: testdata/bad/introducers-no-furl.yaml:2: introducers.grid.furl: introducer has no furl"},
	{"introducers-null.yaml", ErrType,
		"config: testdata/bad/introducers-null.yaml:1: introducers: must be a mapping of petname to {furl: ...}, not null"},
	{"introducers-petname-int.yaml", ErrType,
		"config: testdata/bad/introducers-petname-int.yaml:2: introducers: keys must be strings, not an integer"},
	{"introducers-petname-slash.yaml", ErrInvalidValue,
		"config: testdata/bad/introducers-petname-slash.yaml:2: introducers.../../etc: petname \"../../etc\" must not contain '/', '\\' or NUL (it names a cache file)"},
	{"introducers-syntax.yaml", ErrSyntax,
		"config: testdata/bad/introducers-syntax.yaml:3: YAML: found unexpected end of stream"},
	{"introducers-two-docs.yaml", ErrSyntax,
		"config: testdata/bad/introducers-two-docs.yaml:2: expected a single YAML document, found another one"},
	{"servers-alias-bomb.yaml", ErrSyntax,
		"config: testdata/bad/servers-alias-bomb.yaml:1: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq.ann.bomb[0][3][9][9][1]: document too complex (alias expansion limit)"},
	{"servers-bad-furl.yaml", ErrInvalidValue,
		"config: testdata/bad/servers-bad-furl.yaml:4: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq.ann.anonymous-storage-FURL: hints: parse FURL \"not-a-furl\": unknown FURL prefix"},
	{"servers-bad-handler.yaml", ErrInvalidValue,
		"config: testdata/bad/servers-bad-handler.yaml:6: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq.connections.tcp: hints: connections override \"tcp\": unknown handler type \"socks\" (want tcp, tor, i2p or disabled)"},
	{"servers-bad-hint-type.yaml", ErrInvalidValue,
		"config: testdata/bad/servers-bad-hint-type.yaml:7: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq.connections.tpc: hints: connections override: unknown hint type \"tpc\" (want tcp, tor or i2p)"},
	{"servers-bad-seed.yaml", ErrInvalidValue,
		"config: testdata/bad/servers-bad-seed.yaml:5: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq.ann.permutation-seed-base32: not lower-case unpadded base32: \"NOT-BASE32\""},
	{"servers-duplicate-id.yaml", ErrDuplicate,
		"config: testdata/bad/servers-duplicate-id.yaml:5: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq: key already defined at line 2"},
	{"servers-empty.yaml", ErrEmptyDocument,
		"config: testdata/bad/servers-empty.yaml: file is empty; remove it or define storage servers"},
	{"servers-merge-key.yaml", ErrSyntax,
		"config: testdata/bad/servers-merge-key.yaml:4: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq.ann: YAML merge keys (<<) are not supported"},
	{"servers-no-ann.yaml", ErrMissing,
		"config: testdata/bad/servers-no-ann.yaml:2: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq.ann: server has no ann"},
	{"servers-no-furl.yaml", ErrMissing,
		"config: testdata/bad/servers-no-furl.yaml:4: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq.ann.anonymous-storage-FURL: ann has no anonymous-storage-FURL"},
	{"servers-null-handler.yaml", ErrType,
		"config: testdata/bad/servers-null-handler.yaml:6: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq.connections.tcp: must be a string, not null"},
	{"servers-seqnum-string.yaml", ErrType,
		"config: testdata/bad/servers-seqnum-string.yaml:5: storage.v0-c2ng2pbrmxmlwpijn3mr72ckk5fmzk6uxf6nhowyosaubrt6y5mq.ann.seqnum: must be an integer, not a string"},
	{"servers-storage-list.yaml", ErrType,
		"config: testdata/bad/servers-storage-list.yaml:2: storage: must be a mapping, not a list"},
	{"servers-uppercase-key.yaml", ErrInvalidValue,
		"config: testdata/bad/servers-uppercase-key.yaml:2: storage.v0-C2NG2PBRMXMLWPIJN3MR72CKK5FMZK6UXF6NHOWYOSAUBRT6Y5MQ: server id \"v0-C2NG2PBRMXMLWPIJN3MR72CKK5FMZK6UXF6NHOWYOSAUBRT6Y5MQ\" looks like a v0- key but is not lower-case base32"},
}

func TestBadYAMLFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tt := range badYAMLFiles {
		listed[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			err := loadBadYAML(path)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.msg {
				t.Errorf("error\n got %s\nwant %s", err, tt.msg)
			}
			if !errors.Is(err, tt.class) {
				t.Errorf("error is not %v", tt.class)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path {
				t.Errorf("error %#v does not name %s", err, path)
			}
		})
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no entry in badYAMLFiles", f)
		}
	}
}

// TestLANOverrideWithHiddenIP is Tahoe's "Tor-mostly client": with
// reveal-IP-address = false and tcp = tor, one LAN server's connections:
// override allows direct TCP. It is honoured, and only that server's policy
// says it reveals the client's IP.
func TestLANOverrideWithHiddenIP(t *testing.T) {
	cfg, err := ParseTahoeConfig("tahoe.cfg", []byte("[node]\nreveal-IP-address = false\ntub.port = disabled\ntub.location = disabled\n[connections]\ntcp = tor\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy.RevealsIP() {
		t.Fatal("node policy with tcp = tor reveals IP")
	}
	s, err := LoadServers("testdata/good/servers-lan-override.yaml", cfg)
	if err != nil {
		t.Fatalf("LAN override refused: %v", err)
	}
	if len(s.Servers) != 1 {
		t.Fatalf("got %d servers, want 1", len(s.Servers))
	}
	srv := s.Servers[0]
	if !srv.Policy.RevealsIP() {
		t.Error("server with connections: {tcp: tcp} is not flagged as revealing the IP")
	}
	d := srv.Policy.Decide("tcp:10.1.2.3:51298")
	if !d.Usable || d.Handler != hints.HandlerTCP || !d.RevealsIP {
		t.Errorf("Decide = %+v, want usable direct tcp that reveals IP", d)
	}
}
