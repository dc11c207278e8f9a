package tubtls

// Interop tests against the real Python Foolscap (Debian's python3-foolscap,
// see internal/pyfoolscap). They fail, never skip, when it is missing.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/internal/pyfoolscap"
)

const pyTimeout = time.Minute

// pyFoolscapWrites makes identities with Foolscap in dir: certfile.pem by
// Tub(certFile=...), created.pem from crypto.createCertificate().dumpPEM().
// It prints "name tubid" lines.
const pyFoolscapWrites = `
import sys
from foolscap.api import Tub
from foolscap import crypto
d = sys.argv[1]
print("certfile", Tub(certFile=d + "/certfile.pem").getTubID())
c = crypto.createCertificate()
with open(d + "/created.pem", "wb") as f:
    f.write(c.dumpPEM())
print("created", Tub(certData=c.dumpPEM()).getTubID())
`

// TestInteropFoolscapNodePEMLoadsInGo: a node.pem made by Foolscap yields the
// TubID Foolscap computes, through ParsePEM and LoadOrCreateNodePEM, and the
// file is not rewritten.
func TestInteropFoolscapNodePEMLoadsInGo(t *testing.T) {
	dir := t.TempDir()
	p := pyfoolscap.Start(t, pyFoolscapWrites, dir)
	for range 2 {
		name, want, ok := strings.Cut(p.Line(t, pyTimeout), " ")
		if !ok || len(want) != TubIDLen {
			t.Fatalf("bad line from python: %q %q", name, want)
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".pem")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			id, err := ParsePEM(data)
			if err != nil {
				t.Fatal(err)
			}
			if id.TubID != want {
				t.Errorf("ParsePEM TubID = %s, Foolscap says %s", id.TubID, want)
			}
			id, err = LoadOrCreateNodePEM(path)
			if err != nil {
				t.Fatal(err)
			}
			if id.TubID != want {
				t.Errorf("LoadOrCreateNodePEM TubID = %s, Foolscap says %s", id.TubID, want)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, data) {
				t.Error("LoadOrCreateNodePEM rewrote Foolscap's node.pem")
			}
		})
	}
}

// pyFoolscapReads loads each file named on the command line into Foolscap
// twice (certFile= and certData=) and with pyOpenSSL, and prints
// "tubidFromCertFile tubidFromCertData digest32 x509version extensions subjectCN issuerCN".
const pyFoolscapReads = `
import sys
from OpenSSL import crypto as ossl
from foolscap.api import Tub
from foolscap import crypto
for p in sys.argv[1:]:
    data = open(p, "rb").read()
    a = Tub(certFile=p).getTubID()
    b = Tub(certData=data).getTubID()
    x = ossl.load_certificate(ossl.FILETYPE_PEM, data)
    print(a, b, crypto.digest32(x.digest("sha1")), x.get_version(),
          x.get_extension_count(), x.get_subject().CN, x.get_issuer().CN)
`

// TestInteropGoNodePEMLoadsInFoolscap: files written by LoadOrCreateNodePEM
// and MarshalPEM load in Foolscap with the same TubID, and pyOpenSSL sees
// the ephemeral certificate as v3, no extensions, CN=newpb_thingy.
func TestInteropGoNodePEMLoadsInFoolscap(t *testing.T) {
	dir := t.TempDir()
	node, err := LoadOrCreateNodePEM(filepath.Join(dir, "private", "node.pem"))
	if err != nil {
		t.Fatal(err)
	}
	foolscapRSA, err := ParsePEM(readTestdata(t, "foolscap-node.pem"))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ParsePEM(readTestdata(t, "expired-rsa.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      *Identity
		version string // as pyOpenSSL numbers it: 0 for v1, 2 for v3
	}{
		{"private/node.pem", node, "2"},
		{"ephemeral.pem", newEphemeral(t), "2"},
		{"foolscap-rsa.pem", foolscapRSA, "0"},
		{"expired-rsa.pem", expired, "2"},
	}
	var paths []string
	contents := map[string][]byte{}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		if tt.id != node {
			out, err := tt.id.MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, out, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		contents[path] = data
		paths = append(paths, path)
	}

	p := pyfoolscap.Start(t, pyFoolscapReads, paths...)
	for i, tt := range tests {
		f := strings.Fields(p.Line(t, pyTimeout))
		t.Run(tt.name, func(t *testing.T) {
			want := []string{tt.id.TubID, tt.id.TubID, tt.id.TubID, tt.version, "0", CommonName, CommonName}
			if strings.Join(f, " ") != strings.Join(want, " ") {
				t.Errorf("Foolscap/pyOpenSSL see\n%q\nwant (certFile, certData, digest32, version, extensions, subject, issuer)\n%q", f, want)
			}
			after, err := os.ReadFile(paths[i])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, contents[paths[i]]) {
				t.Error("Foolscap rewrote the file")
			}
		})
	}
}

// pyFoolscapTLSServer accepts TLS connections with Foolscap's own context
// factory (FoolscapContextFactory: the verify callback Foolscap uses on real
// connections) and a fresh Tub's certificate. For each connection it sends
// the TubID of the client's certificate, computed as Foolscap does, over TLS,
// and prints "ok VERSION TUBID X509VERSION EXTENSIONS" or "error ...".
const pyFoolscapTLSServer = `
import socket
from OpenSSL import SSL
from foolscap import crypto
from foolscap.api import Tub
tub = Tub()
cert = tub.myCertificate
ctx = crypto.FoolscapContextFactory(privateKey=cert.privateKey.original,
                                    certificate=cert.original).getContext()
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print("ready", ls.getsockname()[1], tub.getTubID(), flush=True)
while True:
    s, _ = ls.accept()
    c = SSL.Connection(ctx, s)
    c.set_accept_state()
    try:
        c.do_handshake()
        peer = c.get_peer_certificate()
        if peer is None:
            raise Exception("no client certificate")
        tid = crypto.digest32(peer.digest("sha1"))
        c.sendall((tid + "\n").encode())
        print("ok", c.get_protocol_version_name(), tid, peer.get_version(),
              peer.get_extension_count(), flush=True)
        c.shutdown()
    except Exception as e:
        print("error", repr(e).replace("\n", " "), flush=True)
    finally:
        s.close()
`

// TestInteropEphemeralClientCertAcceptedByFoolscap connects to a server
// using Foolscap's TLS context with an ephemeral identity: Foolscap accepts
// the certificate and computes the same TubID, under TLS 1.2 and 1.3. A
// certificate whose only ExtKeyUsage is serverAuth is the control: Foolscap
// rejects it (docs/foolscap-protocol.md §2.4), which shows the check ran.
func TestInteropEphemeralClientCertAcceptedByFoolscap(t *testing.T) {
	p := pyfoolscap.Start(t, pyFoolscapTLSServer)
	ready := strings.Fields(p.Line(t, pyTimeout))
	if len(ready) != 3 || ready[0] != "ready" {
		t.Fatalf("python said %q, want ready PORT TUBID", ready)
	}
	addr := net.JoinHostPort("127.0.0.1", ready[1])
	serverTubID := ready[2]

	serverAuthOnly := certWithServerAuthOnly(t)
	tests := []struct {
		name    string
		id      *Identity
		version uint16
		pyName  string
		accept  bool
	}{
		{"ephemeral/TLS1.2", newEphemeral(t), tls.VersionTLS12, "TLSv1.2", true},
		{"ephemeral/TLS1.3", newEphemeral(t), tls.VersionTLS13, "TLSv1.3", true},
		{"control serverAuth-only/TLS1.2", serverAuthOnly, tls.VersionTLS12, "", false},
		{"control serverAuth-only/TLS1.3", serverAuthOnly, tls.VersionTLS13, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.id.ClientConfig(serverTubID)
			cfg.MaxVersion = tt.version
			line, version, err := dialLine(t, addr, cfg)
			py := strings.Fields(p.Line(t, pyTimeout))
			if !tt.accept {
				if err == nil || len(py) == 0 || py[0] != "error" {
					t.Fatalf("Foolscap accepted a serverAuth-only client certificate: go err %v, python %q", err, py)
				}
				t.Logf("rejected as expected: go: %v; python: %s", err, strings.Join(py, " "))
				return
			}
			if err != nil {
				t.Fatalf("go: %v (python: %q)", err, py)
			}
			if version != tt.version {
				t.Errorf("negotiated %s, want %s", tls.VersionName(version), tls.VersionName(tt.version))
			}
			if line != tt.id.TubID {
				t.Errorf("Foolscap computed client TubID %q over TLS, want %s", line, tt.id.TubID)
			}
			want := []string{"ok", tt.pyName, tt.id.TubID, "2", "0"}
			if strings.Join(py, " ") != strings.Join(want, " ") {
				t.Errorf("python reports %q, want %q", py, want)
			}
		})
	}
}

// dialLine connects with cfg, and returns the first line the server sends and
// the negotiated version.
func dialLine(t *testing.T, addr string, cfg *tls.Config) (string, uint16, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", 0, err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(line, "\n"), c.(*tls.Conn).ConnectionState().Version, err
}

// certWithServerAuthOnly makes the one kind of certificate Foolscap rejects
// as a client certificate.
func certWithServerAuthOnly(t *testing.T) *Identity {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: CommonName},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := fromParts(der, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return id
}
