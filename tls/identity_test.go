package tubtls

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// readTestdata returns the contents of testdata/name.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// firstCertDER returns the DER of the first CERTIFICATE block of a PEM file.
func firstCertDER(t testing.TB, data []byte) []byte {
	t.Helper()
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			t.Fatal("no CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			return b.Bytes
		}
	}
}

// newEphemeral is NewEphemeral for tests.
func newEphemeral(t testing.TB) *Identity {
	t.Helper()
	id, err := NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestTubIDKnownVectors checks TubID against values computed by OpenSSL
// (testdata/README.md) on committed certificates, one of them Foolscap's own.
func TestTubIDKnownVectors(t *testing.T) {
	for _, name := range []string{"foolscap-node", "expired-rsa"} {
		t.Run(name, func(t *testing.T) {
			want := strings.TrimSpace(string(readTestdata(t, name+".tubid")))
			der := firstCertDER(t, readTestdata(t, name+".pem"))
			if got := TubID(der); got != want {
				t.Errorf("TubID = %q, want %q (openssl)", got, want)
			}
		})
	}
}

func TestTubIDShape(t *testing.T) {
	for _, der := range [][]byte{nil, {0}, bytes.Repeat([]byte{0xff}, 5000)} {
		got := TubID(der)
		if len(got) != TubIDLen {
			t.Errorf("len(TubID(%d bytes)) = %d, want %d", len(der), len(got), TubIDLen)
		}
		if strings.Trim(got, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Errorf("TubID %q has characters outside the lowercase base32 alphabet", got)
		}
	}
	// SHA-1 of the empty string is da39a3ee5e6b4b0d3255bfef95601890afd80709.
	if got, want := TubID(nil), "3i42h3s6nnfq2msvx7xzkyayscx5qbyj"; got != want {
		t.Errorf("TubID(nil) = %q, want %q", got, want)
	}
}

func TestNewEphemeralCertificate(t *testing.T) {
	before := time.Now().Add(-time.Second)
	id := newEphemeral(t)
	after := time.Now()

	if len(id.Certificate.Certificate) != 1 {
		t.Fatalf("chain has %d certificates, want 1", len(id.Certificate.Certificate))
	}
	der := id.Certificate.Certificate[0]
	// Parse afresh rather than trusting Leaf.
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(id.Certificate.Leaf.Raw, der) {
		t.Error("Leaf is not the parsed Certificate[0]")
	}
	if cert.Version != 3 {
		t.Errorf("Version = %d, want 3", cert.Version)
	}
	if len(cert.Extensions) != 0 {
		t.Errorf("certificate has %d extensions, want none: %v", len(cert.Extensions), cert.Extensions)
	}
	if cert.KeyUsage != 0 || len(cert.ExtKeyUsage) != 0 || len(cert.UnknownExtKeyUsage) != 0 || cert.BasicConstraintsValid {
		t.Errorf("KeyUsage=%v ExtKeyUsage=%v BasicConstraintsValid=%v, want none", cert.KeyUsage, cert.ExtKeyUsage, cert.BasicConstraintsValid)
	}
	for what, name := range map[string]string{"Subject": cert.Subject.String(), "Issuer": cert.Issuer.String()} {
		if name != "CN="+CommonName {
			t.Errorf("%s = %q, want CN=%s", what, name, CommonName)
		}
	}
	if !bytes.Equal(cert.RawSubject, cert.RawIssuer) {
		t.Error("raw subject and issuer differ")
	}
	if cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("SignatureAlgorithm = %v, want ECDSA-SHA256", cert.SignatureAlgorithm)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("public key is %T, want ECDSA P-256", cert.PublicKey)
	}
	key, ok := id.Certificate.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(pub) {
		t.Errorf("private key %T does not match the certificate", id.Certificate.PrivateKey)
	}
	// CheckSignatureFrom(cert) cannot be used: it refuses any v3 parent
	// without BasicConstraints (ConstraintViolationError), and Foolscap's
	// certificates must not carry that extension. Check the signature
	// itself, with the certificate's own key.
	if err := cert.CheckSignatureFrom(cert); !errors.As(err, new(x509.ConstraintViolationError)) {
		t.Errorf("CheckSignatureFrom(self) = %v, want ConstraintViolationError (no BasicConstraints)", err)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("self-signature does not verify: %v", err)
	}
	tampered := bytes.Clone(cert.RawTBSCertificate)
	tampered[len(tampered)-1] ^= 1
	if err := cert.CheckSignature(cert.SignatureAlgorithm, tampered, cert.Signature); err == nil {
		t.Error("signature verifies over a modified TBSCertificate")
	}
	if cert.SerialNumber.Sign() < 0 {
		t.Errorf("serial number %v is negative", cert.SerialNumber)
	}
	if !cert.NotBefore.Equal(certNotBefore) || !cert.NotAfter.Equal(certNotAfter) {
		t.Errorf("validity = %v .. %v, want the fixed %v .. %v", cert.NotBefore, cert.NotAfter, certNotBefore, certNotAfter)
	}
	if id.TubID != TubID(der) {
		t.Errorf("TubID = %q, want TubID(der) = %q", id.TubID, TubID(der))
	}
	if id.String() != id.TubID {
		t.Errorf("String() = %q, want the TubID", id.String())
	}
	if id.Created.Before(before) || id.Created.After(after) {
		t.Errorf("Created = %v, want between %v and %v", id.Created, before, after)
	}
}

func TestNewEphemeralDistinct(t *testing.T) {
	const n = 50
	seen := make(map[string]bool, n)
	serials := make(map[string]bool, n)
	for range n {
		id := newEphemeral(t)
		if seen[id.TubID] {
			t.Fatalf("TubID %s made twice", id.TubID)
		}
		seen[id.TubID] = true
		serials[id.Certificate.Leaf.SerialNumber.String()] = true
	}
	if len(serials) != n {
		t.Errorf("%d distinct serial numbers in %d certificates", len(serials), n)
	}
}

// errReader fails every read.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestNewECDSARandomnessFailure(t *testing.T) {
	_, err := newECDSA(errReader{}, time.Now())
	if err == nil || !strings.HasPrefix(err.Error(), "tubtls: ") || !strings.Contains(err.Error(), "no entropy") {
		t.Errorf("newECDSA with a failing reader: error %v, want a tubtls error wrapping the read error", err)
	}
}

// TestParsePEMErrors checks every class of bad identity file against its
// exact message.
func TestParsePEMErrors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"bad-empty.pem", "tubtls: no PEM CERTIFICATE or PRIVATE KEY block found"},
		{"bad-garbage.pem", "tubtls: no PEM CERTIFICATE or PRIVATE KEY block found"},
		{"bad-other-blocks.pem", "tubtls: no PEM CERTIFICATE or PRIVATE KEY block found"},
		{"bad-cert-only.pem", "tubtls: no PEM PRIVATE KEY block found"},
		{"bad-key-only.pem", "tubtls: no PEM CERTIFICATE block found"},
		{"bad-key.pem", "tubtls: parsing PRIVATE KEY block: asn1: syntax error: data truncated"},
		{"bad-cert.pem", "tubtls: parsing certificate: x509: malformed certificate"},
		{"bad-mismatch.pem", "tubtls: private key does not match certificate"},
		{"bad-encrypted.pem", "tubtls: encrypted private keys are not supported"},
		{"bad-encrypted-legacy.pem", "tubtls: encrypted private keys are not supported"},
		{"bad-unsupported-key.pem", "tubtls: unsupported private key type *ecdh.PrivateKey"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			id, err := ParsePEM(readTestdata(t, tt.file))
			if err == nil {
				t.Fatalf("ParsePEM succeeded with TubID %s, want error %q", id.TubID, tt.want)
			}
			if id != nil {
				t.Errorf("ParsePEM returned an identity with its error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error\n got %q\nwant %q", got, tt.want)
			}
			var pe *PEMError
			if !errors.As(err, &pe) || pe.Path != "" {
				t.Errorf("error is %T %+v, want *PEMError without Path", err, err)
			}
		})
	}
}

// TestParsePEMForms checks the key encodings and block orders pyOpenSSL
// accepts, on an RSA (Foolscap-made) and an ECDSA identity.
func TestParsePEMForms(t *testing.T) {
	foolscap, err := ParsePEM(readTestdata(t, "foolscap-node.pem"))
	if err != nil {
		t.Fatal(err)
	}
	ephemeral := newEphemeral(t)
	other := newEphemeral(t)

	block := func(typ string, der []byte) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	pkcs8 := func(id *Identity) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(id.Certificate.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		return block("PRIVATE KEY", der)
	}
	certOf := func(id *Identity) []byte { return block("CERTIFICATE", id.Certificate.Certificate[0]) }
	ecKey, err := x509.MarshalECPrivateKey(ephemeral.Certificate.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := x509.MarshalPKCS1PrivateKey(foolscap.Certificate.PrivateKey.(*rsa.PrivateKey))

	tests := []struct {
		name string
		data []byte
		want *Identity
	}{
		{"foolscap file as written", readTestdata(t, "foolscap-node.pem"), foolscap},
		{"cert then PKCS#8", cat(certOf(ephemeral), pkcs8(ephemeral)), ephemeral},
		{"PKCS#8 then cert", cat(pkcs8(ephemeral), certOf(ephemeral)), ephemeral},
		{"SEC 1 EC PRIVATE KEY", cat(certOf(ephemeral), block("EC PRIVATE KEY", ecKey)), ephemeral},
		{"PKCS#1 RSA PRIVATE KEY", cat(block("RSA PRIVATE KEY", rsaKey), certOf(foolscap)), foolscap},
		{"text around and other blocks", cat([]byte("comment\n"), block("PUBLIC KEY", []byte{1}), certOf(ephemeral), []byte("x\n"), pkcs8(ephemeral), []byte("trailer")), ephemeral},
		{"first cert and first key win", cat(certOf(ephemeral), pkcs8(ephemeral), certOf(other), pkcs8(other)), ephemeral},
		{"CRLF line endings", bytes.ReplaceAll(cat(certOf(ephemeral), pkcs8(ephemeral)), []byte("\n"), []byte("\r\n")), ephemeral},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePEM(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if got.TubID != tt.want.TubID {
				t.Errorf("TubID = %s, want %s", got.TubID, tt.want.TubID)
			}
			if !got.Certificate.PrivateKey.(interface{ Equal(crypto.PrivateKey) bool }).Equal(tt.want.Certificate.PrivateKey) {
				t.Error("private key differs")
			}
		})
	}
}

func TestMarshalPEMRoundTrip(t *testing.T) {
	foolscap, err := ParsePEM(readTestdata(t, "foolscap-node.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for name, id := range map[string]*Identity{"ephemeral ECDSA": newEphemeral(t), "foolscap RSA": foolscap} {
		t.Run(name, func(t *testing.T) {
			out, err := id.MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			// Foolscap's layout: CERTIFICATE, then PKCS#8 PRIVATE KEY, nothing else.
			b1, rest := pem.Decode(out)
			b2, rest := pem.Decode(rest)
			if b1 == nil || b1.Type != "CERTIFICATE" || b2 == nil || b2.Type != "PRIVATE KEY" || len(rest) != 0 {
				t.Fatalf("MarshalPEM layout is not CERTIFICATE + PRIVATE KEY:\n%s", out)
			}
			if !bytes.Equal(b1.Bytes, id.Certificate.Certificate[0]) {
				t.Error("CERTIFICATE block is not the identity's certificate")
			}
			back, err := ParsePEM(out)
			if err != nil {
				t.Fatal(err)
			}
			if back.TubID != id.TubID {
				t.Errorf("TubID after round trip = %s, want %s", back.TubID, id.TubID)
			}
			again, err := back.MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, out) {
				t.Error("MarshalPEM(ParsePEM(MarshalPEM(id))) differs from MarshalPEM(id)")
			}
		})
	}
}

func TestLoadOrCreateNodePEMCreatesThenLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node", "private")
	path := filepath.Join(dir, "node.pem")

	first, err := LoadOrCreateNodePEM(path)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{path: 0o600, dir: 0o700 | fs.ModeDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode = %v, want %v", p, fi.Mode(), want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "node.pem" {
		t.Errorf("directory holds %v, want only node.pem (no temporary files left)", entries)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, err := ParsePEM(data)
	if err != nil {
		t.Fatal(err)
	}
	if fromFile.TubID != first.TubID {
		t.Errorf("file holds TubID %s, LoadOrCreateNodePEM returned %s", fromFile.TubID, first.TubID)
	}
	if _, ok := first.Certificate.PrivateKey.(*ecdsa.PrivateKey); !ok {
		t.Errorf("new node key is %T, want ECDSA", first.Certificate.PrivateKey)
	}

	second, err := LoadOrCreateNodePEM(path)
	if err != nil {
		t.Fatal(err)
	}
	if second.TubID != first.TubID {
		t.Errorf("second load TubID = %s, want %s", second.TubID, first.TubID)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, data) {
		t.Error("loading rewrote node.pem")
	}
}

func TestLoadOrCreateNodePEMLoadsFoolscapFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.pem")
	data := readTestdata(t, "foolscap-node.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := LoadOrCreateNodePEM(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(readTestdata(t, "foolscap-node.tubid"))); id.TubID != want {
		t.Errorf("TubID = %s, want %s", id.TubID, want)
	}
}

// TestLoadOrCreateNodePEMNeverOverwrites checks that a bad node.pem is an
// error naming the file, and is left byte for byte as it was.
func TestLoadOrCreateNodePEMNeverOverwrites(t *testing.T) {
	for _, name := range []string{"bad-empty.pem", "bad-garbage.pem", "bad-key-only.pem", "bad-mismatch.pem"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "node.pem")
			data := readTestdata(t, name)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, parseErr := ParsePEM(data)
			id, err := LoadOrCreateNodePEM(path)
			if err == nil {
				t.Fatalf("LoadOrCreateNodePEM succeeded with TubID %s", id.TubID)
			}
			want := "tubtls: " + path + ": " + strings.TrimPrefix(parseErr.Error(), "tubtls: ")
			if err.Error() != want {
				t.Errorf("error\n got %q\nwant %q", err, want)
			}
			var pe *PEMError
			if !errors.As(err, &pe) || pe.Path != path {
				t.Errorf("error %T does not carry Path %s", err, path)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, data) {
				t.Error("node.pem was modified")
			}
		})
	}
}

func TestLoadOrCreateNodePEMUnreadable(t *testing.T) {
	// A directory where the file should be: reading fails with something
	// other than "not exist", which must not lead to creating a file.
	path := filepath.Join(t.TempDir(), "node.pem")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreateNodePEM(path)
	var pe *PEMError
	if !errors.As(err, &pe) || pe.Path != path || !strings.Contains(err.Error(), path) {
		t.Fatalf("error = %v, want a *PEMError naming %s", err, path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v matches fs.ErrNotExist", err)
	}
}

func TestLoadOrCreateNodePEMCannotCreateDir(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(parent, "private", "node.pem")
	_, err := LoadOrCreateNodePEM(path)
	var pe *PEMError
	if !errors.As(err, &pe) || pe.Path != path {
		t.Fatalf("error = %v, want a *PEMError naming %s", err, path)
	}
}

// TestLoadOrCreateNodePEMConcurrent starts many creators at once on a missing
// file: all must end with the identity of the single file that was written.
func TestLoadOrCreateNodePEMConcurrent(t *testing.T) {
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "private", "node.pem")
		const n = 8
		ids := make([]*Identity, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				ids[i], errs[i] = LoadOrCreateNodePEM(path)
			})
		}
		close(start)
		wg.Wait()

		onDisk, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ParsePEM(onDisk)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d creator %d: %v", round, i, errs[i])
			}
			if ids[i].TubID != want.TubID {
				t.Fatalf("round %d creator %d has TubID %s, file has %s", round, i, ids[i].TubID, want.TubID)
			}
		}
		entries, err := os.ReadDir(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			t.Fatalf("round %d: directory holds %d entries, want only node.pem", round, len(entries))
		}
	}
}

// TestWriteFileExclusiveLosesRace checks the loser's path directly: when the
// file appears between the read and the link, the existing file is kept and
// loaded.
func TestWriteFileExclusiveLosesRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.pem")
	winner := readTestdata(t, "foolscap-node.pem")
	if err := os.WriteFile(path, winner, 0o600); err != nil {
		t.Fatal(err)
	}
	err := writeFileExclusive(path, []byte("loser"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("writeFileExclusive over an existing file: %v, want fs.ErrExist", err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, winner) {
		t.Error("existing file was replaced")
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (temporary file removed)", len(entries))
	}
}

func TestPEMErrorFormat(t *testing.T) {
	inner := errors.New("boom")
	tests := []struct {
		err  *PEMError
		want string
	}{
		{&PEMError{Err: inner}, "tubtls: boom"},
		{&PEMError{Path: "/n/private/node.pem", Err: inner}, "tubtls: /n/private/node.pem: boom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, inner) {
			t.Errorf("%v does not unwrap to its cause", tt.err)
		}
	}
}

// TestCertificateDatesSayNothing: the validity dates of an identity are the
// same whatever the clock reads when it is made, so a server learns neither
// the client's clock offset nor when the identity was created.
func TestCertificateDatesSayNothing(t *testing.T) {
	clocks := []time.Time{
		time.Unix(0, 0),
		time.Date(2026, 11, 30, 8, 49, 4, 123456789, time.UTC),
		time.Date(2026, 11, 30, 8, 49, 5, 0, time.FixedZone("skewed", -7*3600)),
		time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var want []byte
	for _, now := range clocks {
		id, err := newECDSA(rand.Reader, now)
		if err != nil {
			t.Fatal(err)
		}
		leaf := id.Certificate.Leaf
		if !leaf.NotBefore.Equal(certNotBefore) || !leaf.NotAfter.Equal(certNotAfter) {
			t.Errorf("made at %v: validity %v .. %v, want %v .. %v", now, leaf.NotBefore, leaf.NotAfter, certNotBefore, certNotAfter)
		}
		// The DER bytes of the validity, not just the parsed times, are equal.
		var tbs struct {
			Raw                asn1.RawContent
			Version            int `asn1:"optional,explicit,default:0,tag:0"`
			SerialNumber       *big.Int
			SignatureAlgorithm asn1.RawValue
			Issuer             asn1.RawValue
			Validity           asn1.RawValue
		}
		if _, err := asn1.Unmarshal(leaf.RawTBSCertificate, &tbs); err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = tbs.Validity.FullBytes
		} else if !bytes.Equal(tbs.Validity.FullBytes, want) {
			t.Errorf("made at %v: validity bytes %x, want %x", now, tbs.Validity.FullBytes, want)
		}
	}
	for range 3 {
		id, err := NewEphemeral()
		if err != nil {
			t.Fatal(err)
		}
		if !id.Certificate.Leaf.NotBefore.Equal(certNotBefore) || !id.Certificate.Leaf.NotAfter.Equal(certNotAfter) {
			t.Errorf("NewEphemeral: validity %v .. %v", id.Certificate.Leaf.NotBefore, id.Certificate.Leaf.NotAfter)
		}
	}
}
