package refid

import (
	"crypto/rsa"
	"testing"

	tubtls "github.com/tubfarm/tubfarm/tls"
)

// TestNewRSA2048 checks the identity is what Foolscap would make and that
// it survives tubtls's own PEM round trip with the same TubID.
func TestNewRSA2048(t *testing.T) {
	id, err := NewRSA2048()
	if err != nil {
		t.Fatal(err)
	}
	key, ok := id.Certificate.PrivateKey.(*rsa.PrivateKey)
	if !ok || key.N.BitLen() != 2048 {
		t.Fatalf("private key %T, want a 2048-bit RSA key", id.Certificate.PrivateKey)
	}
	leaf := id.Certificate.Leaf
	if leaf.Subject.CommonName != tubtls.CommonName || leaf.Issuer.CommonName != tubtls.CommonName {
		t.Errorf("subject %q issuer %q, want %q", leaf.Subject.CommonName, leaf.Issuer.CommonName, tubtls.CommonName)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Errorf("certificate is not self-signed: %v", err)
	}
	if id.TubID != tubtls.TubID(id.Certificate.Certificate[0]) {
		t.Errorf("TubID %s does not match the certificate", id.TubID)
	}
	pem, err := id.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := tubtls.ParsePEM(pem)
	if err != nil {
		t.Fatal(err)
	}
	if back.TubID != id.TubID {
		t.Errorf("after a PEM round trip TubID %s, want %s", back.TubID, id.TubID)
	}
	other, err := NewRSA2048()
	if err != nil {
		t.Fatal(err)
	}
	if other.TubID == id.TubID {
		t.Error("two identities share a TubID")
	}
}
