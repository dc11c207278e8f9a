// Package refid makes Tub identities the way Python Foolscap's Tub() does
// (foolscap/crypto.py createCertificate: an RSA-2048 key and a self-signed
// SHA-256 certificate named "newpb_thingy"), so that benchmarks can measure
// tubfarm's ephemeral ECDSA identities against them, and the comparison can
// give Foolscap servers the kind of identity real ones have.
package refid

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	tubtls "github.com/tubfarm/tubfarm/tls"
)

// NewRSA2048 returns a new identity with an RSA-2048 key and a self-signed
// certificate valid for a year, as Foolscap makes them.
func NewRSA2048() (*tubtls.Identity, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("refid: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: tubtls.CommonName},
		NotBefore:    now,
		NotAfter:     now.Add(365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("refid: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("refid: %w", err)
	}
	return &tubtls.Identity{
		Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		TubID:       tubtls.TubID(der),
		Created:     now,
	}, nil
}
