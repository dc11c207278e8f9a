package config

import "io/fs"

// WriteFileAtomic replaces the file at path with data, the way [WriteCache]
// does: the data goes to a temporary file in the same directory, which is
// synced and renamed over path, and then the directory is synced. Readers
// see the old file or the new one, never a partial file; on error the old
// file is intact. perm is the new file's mode.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeFileAtomic(path, data, perm)
}
