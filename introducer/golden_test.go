package introducer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
)

// The golden vector: an announcement made by Tahoe-LAFS 1.20's publish()
// with a throwaway key (docs/introducers.md, "Golden vector").
const (
	goldenPriv = "priv-v0-clhlvw4thfeekvw7vlbwkwfhvh2a3jp5dedox2mqje7at6akrona"
	goldenSig  = "v0-ucywbwnfx53seaak5rgdyqlzirutnbfovv3vxk7tq2awqckxvzhilsz4lnez6cliybw5yg2fvlbtcyubebj765fqllgd6ev47dyhyaa"
	goldenKey  = "v0-naw4ouzzhdripdsjirjvkrwlnxhuakn5uao2t5y4yyxuva7aiccq"
	goldenSHA  = "d940ccf9c37f89a29ccacef11f2e4ff2a2697689f201b2851ac5ef5a4d6bde0d"
)

func goldenMsg(t *testing.T) []byte {
	t.Helper()
	msg, err := os.ReadFile("testdata/golden-msg.json")
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(msg); hex.EncodeToString(sum[:]) != goldenSHA || len(msg) != 562 {
		t.Fatalf("testdata/golden-msg.json is not the golden message (%d bytes, sha256 %x)", len(msg), sum)
	}
	return msg
}

func TestGoldenVectorVerifies(t *testing.T) {
	msg := goldenMsg(t)
	ann, err := config.VerifyAnnouncement(msg, goldenSig, goldenKey)
	if err != nil {
		t.Fatalf("golden announcement does not verify: %v", err)
	}
	if ann.ServiceName != "storage" || !ann.HasSeqnum || ann.Seqnum != 3 || ann.Nickname != "golden" {
		t.Errorf("got service %q seqnum %d (%t) nickname %q; want storage, 3, golden", ann.ServiceName, ann.Seqnum, ann.HasSeqnum, ann.Nickname)
	}
	f, err := hints.ParseFURL(ann.FURL)
	if err != nil {
		t.Fatal(err)
	}
	if f.TubID != "cthq7pfeqthwzluohq7d6dvyvop3vi6p" {
		t.Errorf("FURL tubid %q", f.TubID)
	}
	tab := NewTable(Limits{}, nil)
	r, e, err := tab.OfferWire(foolscap.Tuple{msg, []byte(goldenSig), []byte(goldenKey)})
	if r != Accepted || err != nil {
		t.Fatalf("offer: %v %v", r, err)
	}
	if got := tab.Entries()[0].Key; got != goldenKey || e.Signed.Key != goldenKey {
		t.Errorf("key_s %q, want the announcement's key %q", got, goldenKey)
	}
}

// The private key re-creates the signature: Ed25519 is deterministic, so
// tubfarm signs exactly as Tahoe does.
func TestGoldenVectorSigning(t *testing.T) {
	msg := goldenMsg(t)
	enc := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	seed, err := enc.DecodeString(strings.TrimPrefix(goldenPriv, "priv-v0-"))
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if got := config.FormatServerKey(priv.Public().(ed25519.PublicKey)); got != goldenKey {
		t.Fatalf("public key %s, want %s", got, goldenKey)
	}
	if got := "v0-" + enc.EncodeToString(ed25519.Sign(priv, msg)); got != goldenSig {
		t.Fatalf("signature %s, want %s", got, goldenSig)
	}
}

func TestGoldenVectorTampered(t *testing.T) {
	msg := bytes.Replace(goldenMsg(t), []byte(`"seqnum": 3`), []byte(`"seqnum": 4`), 1)
	tab := NewTable(Limits{}, nil)
	if r, _, _ := tab.OfferWire(foolscap.Tuple{msg, []byte(goldenSig), []byte(goldenKey)}); r != BadSignature {
		t.Fatalf("seqnum changed to 4: %v, want bad_signature", r)
	}
	if tab.Len() != 0 || tab.Counts()[BadSignature] != 1 {
		t.Fatalf("table holds %d, counts %v", tab.Len(), tab.Counts())
	}
}
