//go:build !unix

package cli

import "errors"

// lockFile is not implemented off Unix: pin and unpin refuse to run rather
// than risk losing a concurrent edit.
func lockFile(string) (func(), error) {
	return nil, errors.New("file locking is not supported on this system")
}
