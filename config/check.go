package config

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
)

// CheckServers reads the servers.yaml at path like [LoadServers] but does
// not stop at the first bad entry: it returns every entry that loads
// (sorted by ID, as in [Servers]), the notes, and one *[FileError] per
// entry that does not load. A problem with the whole file (unreadable, not
// YAML, empty, no mapping, a repeated server id) is the only error. A
// missing file has no entries and no errors.
//
// It is for reporting ("tubfarm check"); a node must use LoadServers, which
// rejects the whole file when any entry is bad.
func CheckServers(path string, cfg *TahoeConfig) (s *Servers, entryErrs []error, err error) {
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Servers{Path: path}, nil, nil
	}
	if err != nil {
		return nil, nil, &FileError{Path: path, Err: err}
	}
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
			continue
		}
		if entries, err = y.mapping(v, "storage"); err != nil {
			return nil, nil, err
		}
	}
	for _, p := range entries {
		srv, err := y.staticServer(p, cfg, s)
		if err != nil {
			entryErrs = append(entryErrs, err)
			continue
		}
		s.Servers = append(s.Servers, srv)
	}
	slices.SortFunc(s.Servers, func(a, b StaticServer) int { return strings.Compare(a.ID, b.ID) })
	return s, entryErrs, nil
}
