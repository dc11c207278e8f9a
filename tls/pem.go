package tubtls

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tubfarm/tubfarm/internal/nodefile"
)

// PEMError reports a node.pem (or other identity file) that cannot be used.
type PEMError struct {
	Path string // file name, or "" when parsing bytes
	Err  error
}

func (e *PEMError) Error() string {
	if e.Path == "" {
		return "tubtls: " + e.Err.Error()
	}
	return "tubtls: " + e.Path + ": " + e.Err.Error()
}

func (e *PEMError) Unwrap() error { return e.Err }

// ParsePEM reads an identity in Foolscap's format: a CERTIFICATE block and a
// private key block (PKCS#8 "PRIVATE KEY", as Foolscap writes it; PKCS#1 "RSA
// PRIVATE KEY" and SEC 1 "EC PRIVATE KEY" are accepted too, since pyOpenSSL
// loads them). The blocks may come in either order; other blocks are ignored,
// and so are further CERTIFICATE and key blocks after the first of each.
// Encrypted keys are not supported. The private key must match the
// certificate. Errors are *PEMError.
func ParsePEM(data []byte) (*Identity, error) {
	id, err := parsePEM(data)
	if err != nil {
		return nil, &PEMError{Err: err}
	}
	return id, nil
}

func parsePEM(data []byte) (*Identity, error) {
	var certDER []byte
	var key crypto.Signer
	encrypted := false
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			if certDER == nil {
				certDER = block.Bytes
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if key != nil {
				continue
			}
			if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
				// OpenSSL's legacy encrypted form (RFC 1421 headers).
				encrypted = true
				continue
			}
			k, err := parsePrivateKey(block)
			if err != nil {
				return nil, err
			}
			key = k
		case "ENCRYPTED PRIVATE KEY":
			encrypted = true
		}
	}
	switch {
	case certDER == nil && key == nil:
		return nil, errors.New("no PEM CERTIFICATE or PRIVATE KEY block found")
	case certDER == nil:
		return nil, errors.New("no PEM CERTIFICATE block found")
	case key == nil && encrypted:
		return nil, errors.New("encrypted private keys are not supported")
	case key == nil:
		return nil, errors.New("no PEM PRIVATE KEY block found")
	}
	return fromParts(certDER, key, time.Now())
}

func parsePrivateKey(block *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing %s block: %w", block.Type, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
	return s, nil
}

// MarshalPEM returns the identity in Foolscap's node.pem format: the
// CERTIFICATE block followed by a PKCS#8 PRIVATE KEY block.
func (id *Identity) MarshalPEM() ([]byte, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(id.Certificate.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("tubtls: marshalling private key: %w", err)
	}
	var buf bytes.Buffer
	pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: id.Certificate.Certificate[0]})
	pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return buf.Bytes(), nil
}

// LoadOrCreateNodePEM loads the persistent identity at path (normally
// NODEDIR/private/node.pem). If the file does not exist it makes a new ECDSA
// P-256 identity and writes it there atomically with mode 0600, creating the
// directory (0700) if needed. A file that exists but cannot be parsed is an
// error naming path: it is never overwritten.
//
// Several processes (or goroutines) may call LoadOrCreateNodePEM for the same
// path at once: exactly one of them creates the file, and the others return
// the identity it wrote, so all of them end up with the same TubID.
func LoadOrCreateNodePEM(path string) (*Identity, error) {
	id, err := loadNodePEM(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	id, err = NewEphemeral()
	if err != nil {
		return nil, err
	}
	out, err := id.MarshalPEM()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, &PEMError{Path: path, Err: err}
	}
	err = writeFileExclusive(path, out, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another creator won the race; its file is complete (it appeared
		// with a single link), so use its identity rather than ours.
		return loadNodePEM(path)
	}
	if err != nil {
		return nil, &PEMError{Path: path, Err: err}
	}
	return id, nil
}

// MaxNodePEMSize bounds the node.pem read by [LoadOrCreateNodePEM]: a
// larger file, or one that is not a regular file, is refused unread. A
// node.pem is a certificate and a key, 1 to 5 KB.
const MaxNodePEMSize = 64 << 10

// loadNodePEM reads and parses the identity at path. A missing file gives an
// error matching fs.ErrNotExist.
func loadNodePEM(path string) (*Identity, error) {
	data, err := nodefile.Read(path, MaxNodePEMSize)
	if err != nil {
		return nil, &PEMError{Path: path, Err: err}
	}
	id, err := parsePEM(data)
	if err != nil {
		return nil, &PEMError{Path: path, Err: err}
	}
	return id, nil
}

// writeFileExclusive writes data to a temporary file in the same directory,
// syncs it, and links it to path, so that path appears complete or not at
// all, even after a crash. It never replaces an existing file: if path exists
// it returns an error matching fs.ErrExist.
func writeFileExclusive(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".node-pem-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // the temporary name goes in every case
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// Link, not rename: if another process created path meanwhile, keep
	// theirs rather than replacing an identity that may already be in use.
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
