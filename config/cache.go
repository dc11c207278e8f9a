package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// A CacheEntry is one announcement in an introducer cache file.
//
// On disk it is a mapping with Tahoe's two keys, "ann" (the announcement
// dictionary) and "key_s" (the server id), plus, when the signed form is
// known, "msg" (the exact JSON that was signed) and "sig" ("v0-" + base32
// Ed25519 signature). Tahoe ignores the extra keys, so these files stay
// readable by Tahoe; this package verifies them on load.
type CacheEntry struct {
	// Key is the server id, "v0-" + base32 Ed25519 public key (key_s).
	Key string
	// Announcement is the announcement dictionary (ann).
	Announcement Announcement
	// Signed is the signed form, or nil for an unsigned entry (every entry
	// of a cache Tahoe wrote). Entries returned by ReadCache/ParseCache
	// with Signed set have been verified.
	Signed *Signed
	// Line is the entry's line in the file it was read from (0 otherwise).
	Line int
}

// Verified reports whether the entry carries a signature, which
// ReadCache and ParseCache have checked. Unverified entries come from
// caches written by Tahoe, which does not store signatures.
func (e CacheEntry) Verified() bool { return e.Signed != nil }

// A Cache is the content of one introducer cache file.
type Cache struct {
	// Path is the file read.
	Path string
	// Entries are the usable entries in file order.
	Entries []CacheEntry
	// Dropped describes each entry that was skipped: a bad signature, an
	// "ann" that differs from the signed "msg", a malformed key or
	// announcement. Each is a *FileError naming the entry's line.
	Dropped []error
}

// ReadCache reads an introducer cache file. A missing file is an empty
// cache. Problems with single entries drop that entry and are listed in
// Cache.Dropped; the error result is for problems with the whole file
// (unreadable, not YAML, not a list).
func ReadCache(path string) (*Cache, error) {
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Cache{Path: path}, nil
	}
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	return ParseCache(path, data)
}

// ParseCache parses the contents of the introducer cache file at path
// (used in errors). See [ReadCache].
func ParseCache(path string, data []byte) (*Cache, error) {
	y, root, err := parseYAML(path, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &FileError{Path: path, Err: classErr(ErrEmptyDocument, "cache file is empty; it must be a list")}
	}
	if root, err = y.resolve(root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.SequenceNode {
		return nil, y.errAt(root, "", classErr(ErrType, "cache must be a list, not "+kindName(root)))
	}
	c := &Cache{Path: path}
	for i, n := range root.Content {
		e, err := y.cacheEntry(n, "["+itoa(i)+"]")
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				fe = y.errAt(n, "["+itoa(i)+"]", err)
			}
			c.Dropped = append(c.Dropped, fe)
			continue
		}
		c.Entries = append(c.Entries, e)
	}
	return c, nil
}

func (y *yamlFile) cacheEntry(n *yaml.Node, field string) (CacheEntry, error) {
	pairs, err := y.mapping(n, field)
	if err != nil {
		return CacheEntry{}, err
	}
	n, _ = y.resolve(n)
	var keyN, annN, msgN, sigN *yaml.Node
	for _, p := range pairs {
		switch p.key {
		case "key_s":
			keyN = p.value
		case "ann":
			annN = p.value
		case "msg":
			msgN = p.value
		case "sig":
			sigN = p.value
		}
	}
	if keyN == nil {
		return CacheEntry{}, y.errAt(n, field+".key_s", classErr(ErrMissing, "entry has no key_s"))
	}
	if annN == nil {
		return CacheEntry{}, y.errAt(n, field+".ann", classErr(ErrMissing, "entry has no ann"))
	}
	key, err := y.str(keyN, field+".key_s")
	if err != nil {
		return CacheEntry{}, err
	}
	if _, err := ParseServerKey(key); err != nil {
		return CacheEntry{}, y.errAt(keyN, field+".key_s", err)
	}
	ann, err := y.announcement(annN, field+".ann")
	if err != nil {
		return CacheEntry{}, err
	}
	e := CacheEntry{Key: key, Announcement: ann, Line: n.Line}
	if msgN == nil && sigN == nil {
		return e, nil
	}
	if msgN == nil || sigN == nil {
		at := msgN
		if at == nil {
			at = sigN
		}
		return CacheEntry{}, y.errAt(at, field, classErr(ErrBadSignature, "entry has only one of msg and sig"))
	}
	msg, err := y.str(msgN, field+".msg")
	if err != nil {
		return CacheEntry{}, err
	}
	sig, err := y.str(sigN, field+".sig")
	if err != nil {
		return CacheEntry{}, err
	}
	signed := Signed{Msg: []byte(msg), Sig: sig, Key: key}
	verified, err := signed.Verify()
	if err != nil {
		return CacheEntry{}, y.errAt(sigN, field+".sig", err)
	}
	if !verified.Equal(ann) {
		return CacheEntry{}, y.errAt(annN, field+".ann", classErr(ErrBadSignature, "ann differs from the signed msg"))
	}
	e.Signed = &signed
	return e, nil
}

// announcement converts an "ann" mapping node, reporting bad fields at
// their own line.
func (y *yamlFile) announcement(n *yaml.Node, field string) (Announcement, error) {
	v, err := y.value(n, field, 0)
	if err != nil {
		return Announcement{}, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		rn, _ := y.resolve(n)
		return Announcement{}, y.errAt(rn, field, classErr(ErrType, "must be a mapping, not "+kindName(rn)))
	}
	a, err := newAnnouncement(m)
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			at, _ := y.resolve(n)
			if pairs, perr := y.mapping(n, field); perr == nil {
				for _, p := range pairs {
					if p.key == fe.field {
						at = p.value
					}
				}
			}
			return Announcement{}, y.errAt(at, join(field, fe.field), fe.err)
		}
		return Announcement{}, y.errAt(n, field, err)
	}
	return a, nil
}

// MarshalCache encodes entries in the cache file format (a YAML list,
// keys sorted). Entries with Signed set are verified first and their "ann"
// is taken from the signed message; an entry whose Announcement is set
// and differs from it is an error. Unsigned entries must have a valid Key.
func MarshalCache(entries []CacheEntry) ([]byte, error) {
	out := make([]map[string]any, 0, len(entries))
	for i, e := range entries {
		item := map[string]any{"key_s": e.Key}
		ann := e.Announcement
		if e.Signed != nil {
			if e.Signed.Key != e.Key && e.Key != "" {
				return nil, &FileError{Path: "cache", Field: "[" + itoa(i) + "]", Err: classErr(ErrConflict, "Key differs from Signed.Key")}
			}
			v, err := e.Signed.Verify()
			if err != nil {
				return nil, &FileError{Path: "cache", Field: "[" + itoa(i) + "]", Err: err}
			}
			if ann.fields != nil && !ann.Equal(v) {
				return nil, &FileError{Path: "cache", Field: "[" + itoa(i) + "]", Err: classErr(ErrBadSignature, "Announcement differs from the signed msg")}
			}
			ann = v
			item["key_s"] = e.Signed.Key
			item["msg"] = string(e.Signed.Msg)
			item["sig"] = e.Signed.Sig
		} else if _, err := ParseServerKey(e.Key); err != nil {
			return nil, &FileError{Path: "cache", Field: "[" + itoa(i) + "].key_s", Err: err}
		}
		if ann.fields == nil {
			item["ann"] = map[string]any{}
		} else {
			item["ann"] = ann.fields
		}
		out = append(out, item)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteCache replaces the cache file at path with entries, atomically: the
// data goes to a temporary file in the same directory, which is synced and
// renamed over path, and the directory is synced. Readers see the old file
// or the new one, never a partial file; on error the old file is intact.
func WriteCache(path string, entries []CacheEntry) error {
	data, err := MarshalCache(entries)
	if err != nil {
		var fe *FileError
		if errors.As(err, &fe) {
			fe.Path = path
			return fe
		}
		return &FileError{Path: path, Err: err}
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return &FileError{Path: path, Err: err}
	}
	return nil
}

// WriteVerifiedCache is [WriteCache] for signed entries the caller has
// already verified and whose Announcement is the verified one (the entries
// of an introducer table, say): their signatures are not checked again, and
// the file is written by a small encoder of its own (double-quoted scalars,
// each "ann" in flow style), which makes a large cache cheap to rewrite;
// YAML loaders read the same data. It returns the number of bytes written.
func WriteVerifiedCache(path string, entries []CacheEntry) (int, error) {
	data, err := appendCacheYAML(make([]byte, 0, 1024*len(entries)), entries)
	if err != nil {
		return 0, &FileError{Path: path, Err: err}
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return 0, &FileError{Path: path, Err: err}
	}
	return len(data), nil
}

// testHookBeforeRename, if set, runs after the temporary file is complete
// and before it is renamed; an error aborts the write.
var testHookBeforeRename func(tmp string) error

// writeFileAtomic writes data to path via a synced temporary file and a
// rename, then syncs the directory.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if testHookBeforeRename != nil {
		if err = testHookBeforeRename(tmp); err != nil {
			return err
		}
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
