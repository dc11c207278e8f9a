package tubtls

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePEM checks that ParsePEM never panics, that its errors are
// *PEMError, and that whatever it accepts is a consistent identity that
// survives MarshalPEM and ParsePEM again. Seeds: every file in testdata/
// (Foolscap's node.pem, the bad files) and testdata/fuzz/FuzzParsePEM/.
func FuzzParsePEM(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.pem"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	id, err := NewEphemeral()
	if err != nil {
		f.Fatal(err)
	}
	out, err := id.MarshalPEM()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(out)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := ParsePEM(data)
		if err != nil {
			var pe *PEMError
			if id != nil || !errors.As(err, &pe) || pe.Path != "" {
				t.Fatalf("ParsePEM error %T %v with identity %v", err, err, id)
			}
			return
		}
		der := id.Certificate.Certificate[0]
		if id.TubID != TubID(der) || len(id.TubID) != TubIDLen {
			t.Fatalf("TubID %q does not match the certificate", id.TubID)
		}
		if !bytes.Equal(id.Certificate.Leaf.Raw, der) {
			t.Fatal("Leaf is not Certificate[0]")
		}
		if !containsBlock(data, der) {
			t.Fatal("certificate is not one of the input's blocks")
		}
		again, err := id.MarshalPEM()
		if err != nil {
			// A key type x509 can parse but not marshal would land here.
			t.Fatalf("MarshalPEM of a parsed identity: %v", err)
		}
		back, err := ParsePEM(again)
		if err != nil || back.TubID != id.TubID {
			t.Fatalf("round trip: %v, TubID %v want %s", err, back, id.TubID)
		}
	})
}

// containsBlock reports whether data holds a CERTIFICATE block with der.
func containsBlock(data, der []byte) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if b.Type == "CERTIFICATE" && bytes.Equal(b.Bytes, der) {
			return true
		}
	}
}
