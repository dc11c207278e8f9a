// Package tubtls makes and holds Foolscap Tub identities: a key pair, a
// self-signed certificate, and the TubID that names them.
//
// The package lives in the tls/ directory of the module but is named tubtls so
// that importers can use it next to crypto/tls without renaming either:
//
//	import (
//		"crypto/tls"
//		tubtls "github.com/tubfarm/tubfarm/tls"
//	)
//
// A TubID is the lowercase, unpadded RFC 4648 base32 encoding of the SHA-1
// digest of the DER certificate (not of the public key), so it is always 32
// characters long. Foolscap checks peers by TubID only: there is no CA, no host
// name and no expiry check. Certificates made here carry no KeyUsage or
// ExtKeyUsage extension, because Foolscap rejects a client certificate whose
// only ExtKeyUsage is serverAuth (docs/foolscap-protocol.md §2.5).
//
// Two kinds of identity exist:
//
//   - Ephemeral identities ([NewEphemeral]) use ECDSA P-256 and live only in
//     memory. tubfarm makes one per storage server (or per connection attempt),
//     so that colluding servers cannot link a client by its TubID.
//   - The node's persistent identity lives in private/node.pem, in Foolscap's
//     format: a CERTIFICATE block followed by a PKCS#8 PRIVATE KEY block
//     ([LoadOrCreateNodePEM], [ParsePEM], [Identity.MarshalPEM]).
//
// The *tls.Config builders ([Identity.ClientConfig], [Identity.ServerConfig])
// disable session tickets and session caches, so that no TLS state is shared
// between identities.
package tubtls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

// TubIDLen is the length of every TubID.
const TubIDLen = 32

// CommonName is the subject and issuer common name Foolscap puts in the
// certificates it makes. tubfarm uses the same name so its certificates do not
// stand out.
const CommonName = "newpb_thingy"

// Every certificate tubfarm makes carries the same validity dates. Foolscap
// checks neither date (its TLS verification accepts any certificate and pins
// the TubID instead), so the dates only have to parse. Dates taken from the
// clock at creation, as Foolscap's own are, would hand each server a sample
// of the client's clock and of when the identity was made: enough to link
// the ephemeral identities of one client across servers. NotAfter is RFC
// 5280's "no well-defined expiration date".
var (
	certNotBefore = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)
	certNotAfter  = time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)
)

// b32 is RFC 4648 base32 with the lowercase alphabet, unpadded: the same
// as lowercasing base32.StdEncoding's output, without the second string.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// TubID returns the TubID of a DER-encoded certificate.
func TubID(certDER []byte) string {
	sum := sha1.Sum(certDER)
	var buf [TubIDLen]byte // 20 bytes of SHA-1 are exactly 32 base32 characters
	b32.Encode(buf[:], sum[:])
	return string(buf[:])
}

// Identity is a Tub identity: a certificate, its private key and its TubID.
// An Identity is immutable and safe for concurrent use.
type Identity struct {
	// Certificate holds the DER certificate, the private key and the parsed
	// Leaf.
	Certificate tls.Certificate
	// TubID is TubID(Certificate.Certificate[0]).
	TubID string
	// Created is when the identity was made (ephemeral) or loaded (node.pem).
	Created time.Time
}

// NewEphemeral makes a fresh ECDSA P-256 identity held only in memory, reading
// randomness from rand.Reader.
func NewEphemeral() (*Identity, error) {
	return newECDSA(rand.Reader, time.Now())
}

// newECDSA builds the certificate by hand rather than with
// x509.CreateCertificate: that function verifies its own signature after
// signing, which costs more than key generation and signing together
// (docs/dependencies.md §4). The certificate is parsed back once, so a mistake here still
// fails loudly.
func newECDSA(r io.Reader, now time.Time) (*Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return nil, fmt.Errorf("tubtls: generating key: %w", err)
	}
	der, err := selfSign(r, key)
	if err != nil {
		return nil, err
	}
	id, err := fromParts(der, key, now)
	if err != nil {
		return nil, fmt.Errorf("tubtls: new certificate: %w", err)
	}
	return id, nil
}

var oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}

type algorithmIdentifier struct {
	Algorithm asn1.ObjectIdentifier
}

type validity struct {
	NotBefore, NotAfter time.Time
}

type tbsCertificate struct {
	Version            int `asn1:"optional,explicit,default:0,tag:0"`
	SerialNumber       *big.Int
	SignatureAlgorithm algorithmIdentifier
	Issuer             asn1.RawValue
	Validity           validity
	Subject            asn1.RawValue
	PublicKey          asn1.RawValue
}

type certificate struct {
	TBSCertificate     asn1.RawValue
	SignatureAlgorithm algorithmIdentifier
	SignatureValue     asn1.BitString
}

// cnName is the DER encoding of the Name "CN=newpb_thingy".
var cnName = func() []byte {
	der, err := asn1.Marshal(pkix.Name{CommonName: CommonName}.ToRDNSequence())
	if err != nil {
		panic(err)
	}
	return der
}()

func selfSign(r io.Reader, key *ecdsa.PrivateKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("tubtls: marshalling public key: %w", err)
	}
	var serial [8]byte
	if _, err := io.ReadFull(r, serial[:]); err != nil {
		return nil, fmt.Errorf("tubtls: serial number: %w", err)
	}
	serial[0] &= 0x7f // positive
	tbs, err := asn1.Marshal(tbsCertificate{
		Version:            2, // X.509 v3, without extensions
		SerialNumber:       new(big.Int).SetBytes(serial[:]),
		SignatureAlgorithm: algorithmIdentifier{oidECDSAWithSHA256},
		Issuer:             asn1.RawValue{FullBytes: cnName},
		Validity:           validity{certNotBefore, certNotAfter},
		Subject:            asn1.RawValue{FullBytes: cnName},
		PublicKey:          asn1.RawValue{FullBytes: spki},
	})
	if err != nil {
		return nil, fmt.Errorf("tubtls: encoding certificate: %w", err)
	}
	digest := sha256.Sum256(tbs)
	sig, err := ecdsa.SignASN1(r, key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("tubtls: signing certificate: %w", err)
	}
	der, err := asn1.Marshal(certificate{
		TBSCertificate:     asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: algorithmIdentifier{oidECDSAWithSHA256},
		SignatureValue:     asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
	if err != nil {
		return nil, fmt.Errorf("tubtls: encoding certificate: %w", err)
	}
	return der, nil
}

// fromParts checks that key belongs to the certificate der and assembles an
// Identity. Its errors carry no "tubtls: " prefix: callers wrap them.
func fromParts(der []byte, key crypto.Signer, created time.Time) (*Identity, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate: %w", err)
	}
	if !publicKeysEqual(leaf.PublicKey, key.Public()) {
		return nil, errMismatchedKey
	}
	return &Identity{
		Certificate: tls.Certificate{
			Certificate: [][]byte{der},
			PrivateKey:  key,
			Leaf:        leaf,
		},
		TubID:   TubID(der),
		Created: created,
	}, nil
}

var errMismatchedKey = errors.New("private key does not match certificate")

func publicKeysEqual(a, b crypto.PublicKey) bool {
	switch a := a.(type) {
	case *ecdsa.PublicKey:
		return a.Equal(b)
	case *rsa.PublicKey:
		return a.Equal(b)
	case ed25519.PublicKey:
		return a.Equal(b)
	}
	return false
}

// String returns the TubID, so that logging an Identity never prints key
// material.
func (id *Identity) String() string { return id.TubID }
