package config

import (
	"errors"
	"io/fs"
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
	return parseServers(path, data, cfg, true)
}
