package actors

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"

	tubtls "github.com/tubfarm/tubfarm/tls"
)

// An Identity is the client identity of one connection attempt (of every
// attempt to one server under [PerServer]). Its Key names it to the
// transports from the start: Tor isolation credentials and I2P sessions
// are per Key. Its certificate is made by the first call to Certificate,
// which a [Connector] makes only when it is about to present one (Foolscap
// calls it once a TCP connection is up, right before TLS). An attempt that
// never reaches a server, or that never presents a certificate (HTTPS
// storage), makes no key pair.
//
// Methods are safe for concurrent use.
type Identity struct {
	// Key is 32 random hex digits, unrelated to the certificate, so that
	// nothing a transport sees (a SOCKS user name, an I2P session name)
	// can be matched with the TubID a server sees.
	Key string

	newCert func() (*tubtls.Identity, error)
	once    sync.Once
	made    atomic.Pointer[tubtls.Identity]
	err     error
}

// NewIdentity returns an Identity with a fresh random Key whose certificate
// newCert will make, once, on first use. Its error is returned by every
// call to Certificate.
func NewIdentity(newCert func() (*tubtls.Identity, error)) *Identity {
	var k [16]byte
	_, _ = rand.Read(k[:]) // crypto/rand.Read does not fail
	return &Identity{Key: hex.EncodeToString(k[:]), newCert: newCert}
}

// Certificate returns the identity's certificate and key, making them on
// the first call.
func (i *Identity) Certificate() (*tubtls.Identity, error) {
	i.once.Do(func() {
		id, err := i.newCert()
		if err != nil {
			i.err = err
			return
		}
		i.made.Store(id)
	})
	if i.err != nil {
		return nil, i.err
	}
	return i.made.Load(), nil
}

// Made returns the certificate if Certificate has made it, else nil.
func (i *Identity) Made() *tubtls.Identity {
	if i == nil {
		return nil
	}
	return i.made.Load()
}
