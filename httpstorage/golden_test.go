package httpstorage_test

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/httpstorage"
	"github.com/tubfarm/tubfarm/storage"
)

// Golden vectors from a real Tahoe-LAFS 1.20 storage node on a loopback
// grid: its FURL, NURL, certificate (testdata) and a version answer
// captured over HTTPS.
const (
	goldenFURL     = "pb://bsrtona5k5ab3yzjccfochklfmen43v6@tcp:127.0.0.1:47101/qtjhmoxpa62xxpyasjiwo4h3eswv2t4z"
	goldenNURL     = "pb://W7_talv9awyovED_ICKrQWBIWPs6bNcv9E8yiLkqjLk@127.0.0.1:47101/qtjhmoxpa62xxpyasjiwo4h3eswv2t4z#v=1"
	goldenSwissnum = "qtjhmoxpa62xxpyasjiwo4h3eswv2t4z"
	goldenAuth     = "Tahoe-LAFS cXRqaG1veHBhNjJ4eHB5YXNqaXdvNGgzZXN3djJ0NHo="
	goldenVersion  = "a2582f687474703a2f2f616c6c6d79646174612e6f72672f7461686f652f70726f746f636f6c" +
		"732f73746f726167652f7631a3581c6d6178696d756d2d696d6d757461626c652d7368617265" +
		"2d73697a651b000000138b219000581a6d6178696d756d2d6d757461626c652d73686172652d" +
		"73697a651b00f582a1a13410004f617661696c61626c652d73706163651b000000138b219000" +
		"536170706c69636174696f6e2d76657273696f6e517461686f652d6c6166732f312e32302e30"
)

func goldenCert(t *testing.T) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile("testdata/tahoe-1.20-node.pem")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestGoldenSPKIHash(t *testing.T) {
	cert := goldenCert(t)
	if got := hints.SPKIHash(cert); got != "W7_talv9awyovED_ICKrQWBIWPs6bNcv9E8yiLkqjLk" {
		t.Fatalf("SPKI hash %s", got)
	}
	n, err := hints.ParseNURL(goldenNURL)
	if err != nil {
		t.Fatal(err)
	}
	if !n.MatchesCert(cert) {
		t.Fatal("the golden NURL does not match its certificate")
	}
	// The NURL and the FURL share port and swissnum.
	f, err := hints.ParseFURL(goldenFURL)
	if err != nil {
		t.Fatal(err)
	}
	if n.Swissnum != f.Name || "tcp:"+n.Addr() != f.Hints[0] {
		t.Fatalf("NURL %+v and FURL %+v disagree", n, f)
	}
	// The certificate made with the hint gives back the same NURL.
	again, err := hints.FormatNURL(cert, "tcp:127.0.0.1:47101", goldenSwissnum)
	if err != nil || again.String() != goldenNURL {
		t.Fatalf("FormatNURL = %q, %v", again.String(), err)
	}
}

func TestGoldenAuthorization(t *testing.T) {
	if got := httpstorage.AuthorizationValue(goldenSwissnum); got != goldenAuth {
		t.Fatalf("Authorization %q, want %q", got, goldenAuth)
	}
}

func TestGoldenStorageIndex(t *testing.T) {
	var si storage.Index
	for i := range si {
		si[i] = byte(i)
	}
	if si.String() != "aaaqeayeaudaocajbifqydiob4" {
		t.Fatalf("SI %s", si)
	}
	back, err := storage.ParseIndex(si.String())
	if err != nil || back != si {
		t.Fatalf("ParseIndex: %v %v", back, err)
	}
	if _, err := storage.ParseIndex(strings.ToUpper(si.String())); err == nil {
		t.Fatal("upper-case SI accepted")
	}
}

func TestGoldenVersion(t *testing.T) {
	b, err := hex.DecodeString(goldenVersion)
	if err != nil || len(b) != 190 {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	v, err := httpstorage.DecodeVersion(b)
	if err != nil {
		t.Fatal(err)
	}
	want := storage.Version{
		MaxImmutableShareSize:                   83938611200,
		MaxMutableShareSize:                     69105000000000000,
		AvailableSpace:                          83938611200,
		ApplicationVersion:                      "tahoe-lafs/1.20.0",
		ToleratesImmutableReadOverrun:           true,
		DeleteMutableSharesWithZeroLengthWritev: true,
		FillsHolesWithZeroBytes:                 true,
		PreventsReadPastEndOfShareData:          true,
	}
	if v != want {
		t.Fatalf("version %+v, want %+v", v, want)
	}
	// Our server's encoding is byte for byte Tahoe's.
	enc, err := httpstorage.EncodeVersion(want)
	if err != nil || hex.EncodeToString(enc) != goldenVersion {
		t.Fatalf("EncodeVersion = %x, %v", enc, err)
	}
}
