package tubtls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// reportCPU adds a cpu-ns/op metric (process CPU time, all goroutines, per
// iteration) to b when it returns: wall time per op is unreliable on a
// loaded machine, CPU time much less so. Use it as
//
//	defer reportCPU(b)()
//
// before the b.Loop loop.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkNewEphemeral is the cost of one ephemeral identity as tubfarm
// makes it: key generation, the hand-built certificate, and one parse.
func BenchmarkNewEphemeral(b *testing.B) {
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := NewEphemeral(); err != nil {
			b.Fatal(err)
		}
	}
}

// newEphemeralX509 is NewEphemeral done the ordinary way, with
// x509.CreateCertificate (which verifies its own signature after signing).
// It exists only for BenchmarkNewEphemeralX509.
func newEphemeralX509() (*Identity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var serial [8]byte
	if _, err := rand.Read(serial[:]); err != nil {
		return nil, err
	}
	serial[0] &= 0x7f
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serial[:]),
		Subject:      pkix.Name{CommonName: CommonName},
		NotBefore:    certNotBefore,
		NotAfter:     certNotAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return fromParts(der, key, now)
}

func BenchmarkNewEphemeralX509(b *testing.B) {
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := newEphemeralX509(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewRSA2048 is what Foolscap pays per identity: an RSA 2048 key and
// a self-signed certificate. It is the reference for the cost tubfarm avoids.
func BenchmarkNewRSA2048(b *testing.B) {
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: CommonName},
			NotBefore:    certNotBefore,
			NotAfter:     certNotAfter,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fromParts(der, key, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTubID(b *testing.B) {
	id, err := NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	der := id.Certificate.Certificate[0]
	b.SetBytes(int64(len(der)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if TubID(der) != id.TubID {
			b.Fatal("TubID changed")
		}
	}
}

// BenchmarkHandshakeTLS13 is one full mutually authenticated TLS 1.3
// handshake over a new loopback TCP connection, both ends in this process,
// with the package's Configs (TubID pin, no resumption) and ECDSA identities,
// plus one byte each way (which completes the server's view under TLS 1.3).
func BenchmarkHandshakeTLS13(b *testing.B) {
	server, err := NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	client, err := NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ccfg := client.ClientConfig(server.TubID)
	ccfg.MinVersion = tls.VersionTLS13 // TLS 1.3 only
	scfg := server.ServerConfig()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		r := connect(b, ln, ccfg, scfg)
		if r.clientErr != nil || r.serverErr != nil || r.client.Version != tls.VersionTLS13 || r.client.DidResume {
			b.Fatalf("client %v, server %v, version %x, resumed %v", r.clientErr, r.serverErr, r.client.Version, r.client.DidResume)
		}
	}
}
