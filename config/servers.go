package config

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/tubfarm/tubfarm/hints"
	"gopkg.in/yaml.v3"
)

// A StaticServer is one entry of private/servers.yaml.
type StaticServer struct {
	// ID is the server id as written (ideally its "v0-" key).
	ID string
	// Announcement is the "ann" mapping, used in lieu of an introducer's.
	Announcement Announcement
	// FURL is the parsed anonymous-storage-FURL.
	FURL hints.FURL
	// PermutationSeed is the server's permutation seed (see
	// [PermutationSeed]).
	PermutationSeed []byte
	// Connections is the "connections" override (hint type -> handler),
	// nil if absent. Callers must not modify it.
	Connections map[string]string
	// Policy is the node policy with Connections applied.
	Policy hints.Policy
	// Path and Line locate the entry.
	Path string
	Line int
}

// Servers is the content of private/servers.yaml.
type Servers struct {
	// Path is the file read.
	Path string
	// Servers are the entries, sorted by ID.
	Servers []StaticServer
	// Notes are non-fatal findings, each a *FileError: keys this package
	// does not know (top-level keys other than "storage", entry keys other
	// than "ann" and "connections"; Tahoe ignores them and says "other
	// items may be added in the future"), and server ids whose permutation
	// seed had to be hashed from the id.
	Notes []error
}

// LoadServers reads a servers.yaml. A missing file defines no servers. cfg
// supplies the node policy that "connections" overrides apply to; nil
// means Tahoe's defaults.
//
// Unlike Tahoe, which logs and skips entries it cannot interpret, any bad
// entry makes the whole file an error: the caller keeps the servers it had
// rather than silently losing one.
func LoadServers(path string, cfg *TahoeConfig) (*Servers, error) {
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Servers{Path: path}, nil
	}
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return ParseServers(path, data, cfg)
}

// ParseServers parses the contents of the servers.yaml at path (used in
// errors). See [LoadServers].
//
//	storage:
//	  SERVER-ID:
//	    ann:
//	      anonymous-storage-FURL: pb://...   # required
//	      nickname: ...                      # optional, like any other key
//	    connections:                         # optional
//	      tcp: tor                           # hint type: handler
//
// An empty document is an error (Tahoe crashes on it); a document without
// "storage" defines no servers.
func ParseServers(path string, data []byte, cfg *TahoeConfig) (*Servers, error) {
	s, _, err := parseServers(path, data, cfg, false)
	return s, err
}

// parseServers is ParseServers and, with keepGoing, CheckServers: a bad
// entry is then collected in entryErrs and the others are still read;
// without it, the first bad entry is the error.
func parseServers(path string, data []byte, cfg *TahoeConfig, keepGoing bool) (s *Servers, entryErrs []error, err error) {
	if cfg == nil {
		cfg = DefaultTahoeConfig()
	}
	y, root, err := parseYAML(path, data)
	if err != nil {
		return nil, nil, err
	}
	if root == nil {
		return nil, nil, &FileError{Path: path, Err: classErr(ErrEmptyDocument, "file is empty; remove it or define storage servers")}
	}
	top, err := y.mapping(root, "")
	if err != nil {
		return nil, nil, err
	}
	s = &Servers{Path: path}
	var entries []pair
	for _, p := range top {
		if p.key != "storage" {
			s.Notes = append(s.Notes, y.errAt(p.keyN, p.key, classErr(ErrUnknownKey, "top-level key ignored (only \"storage\" is read)")))
			continue
		}
		v, err := y.resolve(p.value)
		if err != nil {
			return nil, nil, err
		}
		if isNull(v) {
			continue // "storage:" with nothing under it
		}
		if entries, err = y.mapping(v, "storage"); err != nil {
			return nil, nil, err
		}
	}
	s.Servers = make([]StaticServer, 0, len(entries))
	for _, p := range entries {
		srv, err := y.staticServer(p, cfg, s)
		if err != nil {
			if !keepGoing {
				return nil, nil, err
			}
			entryErrs = append(entryErrs, err)
			continue
		}
		s.Servers = append(s.Servers, srv)
	}
	slices.SortFunc(s.Servers, func(a, b StaticServer) int { return strings.Compare(a.ID, b.ID) })
	return s, entryErrs, nil
}

func (y *yamlFile) staticServer(p pair, cfg *TahoeConfig, s *Servers) (StaticServer, error) {
	field := "storage." + p.key
	if p.key == "" {
		return StaticServer{}, y.errAt(p.keyN, field, classErr(ErrInvalidValue, "server id must not be empty"))
	}
	kv, err := y.mapping(p.value, field)
	if err != nil {
		return StaticServer{}, err
	}
	var annN, connN *yaml.Node
	for _, e := range kv {
		switch e.key {
		case "ann":
			annN = e.value
		case "connections":
			connN = e.value
		default:
			s.Notes = append(s.Notes, y.errAt(e.keyN, field+"."+e.key, classErr(ErrUnknownKey, "key ignored (only ann and connections are read)")))
		}
	}
	if annN == nil {
		return StaticServer{}, y.errAt(p.keyN, field+".ann", classErr(ErrMissing, "server has no ann"))
	}
	ann, err := y.announcement(annN, field+".ann")
	if err != nil {
		return StaticServer{}, err
	}
	srv := StaticServer{ID: p.key, Announcement: ann, Path: y.path, Line: p.keyN.Line}
	furlAt := annN
	if pairs, err := y.mapping(annN, field+".ann"); err == nil {
		for _, e := range pairs {
			if e.key == FieldFURL {
				furlAt = e.value
			}
		}
	}
	if ann.FURL == "" {
		return StaticServer{}, y.errAt(furlAt, field+".ann."+FieldFURL, classErr(ErrMissing, "ann has no "+FieldFURL))
	}
	if srv.FURL, err = hints.ParseFURL(ann.FURL); err != nil {
		return StaticServer{}, y.errAt(furlAt, field+".ann."+FieldFURL, wrapClass(ErrInvalidValue, "", err))
	}
	seed, hashed, err := permutationSeed(p.key, ann)
	if err != nil {
		var fe *fieldError
		at, f := p.keyN, field
		if errors.As(err, &fe) {
			at, f, err = furlAt, field+".ann."+fe.field, fe.err
			if pairs, perr := y.mapping(annN, ""); perr == nil {
				for _, e := range pairs {
					if e.key == FieldPermutationSeed {
						at = e.value
					}
				}
			}
		}
		return StaticServer{}, y.errAt(at, f, err)
	}
	if hashed {
		s.Notes = append(s.Notes, y.errAt(p.keyN, field, classErr(ErrInvalidValue,
			"server id is not a v0- key and ann has no "+FieldPermutationSeed+
				": the permutation seed is sha256(id), which may not converge with other clients")))
	}
	srv.PermutationSeed = seed
	srv.Policy = cfg.Policy
	if connN != nil {
		conns, pol, err := y.connections(connN, field+".connections", cfg)
		if err != nil {
			return StaticServer{}, err
		}
		srv.Connections, srv.Policy = conns, pol
	}
	return srv, nil
}

// connections validates a "connections" mapping entry by entry, so an
// error names the line of the offending entry, then applies it to the
// node policy.
func (y *yamlFile) connections(n *yaml.Node, field string, cfg *TahoeConfig) (map[string]string, hints.Policy, error) {
	pairs, err := y.mapping(n, field)
	if err != nil {
		return nil, hints.Policy{}, err
	}
	conns := make(map[string]string, len(pairs))
	for _, p := range pairs {
		f := field + "." + p.key
		v, err := y.str(p.value, f)
		if err != nil {
			return nil, hints.Policy{}, err
		}
		at, _ := y.resolve(p.value)
		one := map[string]string{p.key: v}
		if _, err := cfg.Policy.WithOverride(one); err != nil {
			var pe *hints.PrivacyError
			if errors.As(err, &pe) {
				return nil, hints.Policy{}, y.errAt(at, f, wrapClass(ErrPrivacy, "", err))
			}
			return nil, hints.Policy{}, y.errAt(at, f, wrapClass(ErrInvalidValue, "", err))
		}
		// Like Tahoe, a per-server override may allow direct TCP even with
		// reveal-IP-address = false (a LAN server reached directly while
		// the rest go through Tor). It is honoured, and the resulting
		// policy's RevealsIP flag marks the server in status, logs and
		// metrics.
		conns[p.key] = v
	}
	pol, err := cfg.Policy.WithOverride(maps.Clone(conns))
	if err != nil {
		return nil, hints.Policy{}, y.errAt(n, field, wrapClass(ErrInvalidValue, "", err))
	}
	return conns, pol, nil
}

// PermutationSeed returns the permutation seed Tahoe derives for a server
// (storage_client.py _parse_announcement): the decoded
// permutation-seed-base32 of the announcement if present; else, if id is
// "v0-" followed by 52 letters and digits, the base32-decoded key; else
// sha256(id), which may not converge with other clients. Malformed base32
// (which makes Tahoe fail on that server) is an error.
func PermutationSeed(id string, ann Announcement) ([]byte, error) {
	seed, _, err := permutationSeed(id, ann)
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return nil, fe.err
		}
	}
	return seed, err
}

func permutationSeed(id string, ann Announcement) (seed []byte, hashed bool, err error) {
	if ann.PermutationSeedBase32 != "" {
		b, err := decodeBase32(ann.PermutationSeedBase32)
		if err != nil {
			return nil, false, &fieldError{FieldPermutationSeed, err}
		}
		return b, false, nil
	}
	if _, has := ann.fields[FieldPermutationSeed]; has { // present but ""
		return []byte{}, false, nil
	}
	if rest, ok := strings.CutPrefix(id, keyPrefix); ok && len(rest) == 52 && isAlnumASCII(rest) {
		b, err := decodeBase32(rest)
		if err != nil {
			return nil, false, classErr(ErrInvalidValue, "server id "+quote(id)+" looks like a v0- key but is not lower-case base32")
		}
		return b, false, nil
	}
	h := sha256.Sum256([]byte(id))
	return h[:], true, nil
}

func isAlnumASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
