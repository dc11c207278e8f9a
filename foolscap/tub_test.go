package foolscap

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

type nopObject struct{ iface string }

func (o *nopObject) InterfaceName() string { return o.iface }
func (o *nopObject) CallRemote(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	return nil, nil
}

func TestTubRegister(t *testing.T) {
	tub := NewTub(newID(t))
	obj := &nopObject{}
	if _, err := tub.Register(obj, ""); !errors.Is(err, ErrNoLocation) {
		t.Fatalf("Register before SetLocation: %v, want ErrNoLocation", err)
	}
	tub.SetLocation("tcp:127.0.0.1:1234", "tcp:[::1]:1234")
	furl, err := tub.Register(obj, "")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^pb://` + tub.TubID() + `@tcp:127\.0\.0\.1:1234,tcp:\[::1\]:1234/([a-z2-7]{32})$`)
	m := re.FindStringSubmatch(furl)
	if m == nil {
		t.Fatalf("FURL %q does not match %s", furl, re)
	}
	if got, ok := tub.Lookup([]byte(m[1])); !ok || got != obj {
		t.Errorf("Lookup(%q) = %v, %v", m[1], got, ok)
	}
	if furl2, err := tub.Register(&nopObject{}, "storage"); err != nil || !strings.HasSuffix(furl2, "/storage") {
		t.Errorf("named Register = %q, %v", furl2, err)
	}
	if _, err := tub.Register(&nopObject{}, "storage"); err == nil || !strings.Contains(err.Error(), `"storage" is already registered`) {
		t.Errorf("duplicate name: err = %v", err)
	}
	if _, err := tub.Register(nil, "x"); err == nil {
		t.Error("Register(nil) succeeded")
	}
	tub.Unregister("storage")
	if _, ok := tub.Lookup([]byte("storage")); ok {
		t.Error("Lookup after Unregister found the object")
	}
	if a, b := NewSwissnum(), NewSwissnum(); a == b || len(a) != 32 {
		t.Errorf("swissnums %q %q", a, b)
	}
	if inc := tub.Incarnation(); !validIncarnation(inc) {
		t.Errorf("incarnation %q", inc)
	}
}

// TestAcceptOffer is Foolscap's compareOfferAndExisting table
// (docs/foolscap-protocol.md §3.5), seen from a Tub that is master of an existing
// connection with slave incarnation "slave1" and seqnum 5.
func TestAcceptOffer(t *testing.T) {
	tub := NewTub(newID(t))
	ex := &peerConn{master: true, slaveIR: "slave1", seq: 5}
	tests := []struct {
		name string
		o    offer
		want bool
	}{
		{"no incarnation (pre-0.2.0)", offer{lastConnection: "none 0"}, false},
		{"no last-connection (pre-0.2.0)", offer{incarnation: "slave1"}, false},
		{"peer restarted", offer{incarnation: "slave2", lastConnection: "none 0"}, true},
		{"peer remembers nothing", offer{incarnation: "slave1", lastConnection: "none 0"}, false},
		{"peer remembers our past life", offer{incarnation: "slave1", lastConnection: "0000000000000000 9"}, true},
		{"same seqnum: ours is stale", offer{incarnation: "slave1", lastConnection: tub.Incarnation() + " 5"}, true},
		{"older seqnum", offer{incarnation: "slave1", lastConnection: tub.Incarnation() + " 4"}, false},
		{"newer seqnum (weird)", offer{incarnation: "slave1", lastConnection: tub.Incarnation() + " 6"}, false},
		{"bad seqnum", offer{incarnation: "slave1", lastConnection: tub.Incarnation() + " x"}, false},
	}
	for _, tt := range tests {
		if got := tub.acceptOfferLocked(tt.o, ex); got != tt.want {
			t.Errorf("%s: accept = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTubSeqTableBounded(t *testing.T) {
	tub := NewTub(newID(t))
	for i := range maxPeerSeqs + 10 {
		peer := fmt.Sprintf("peer%06d", i)
		slot, _, _, err := tub.decideAsMaster(peer, offer{incarnation: "x", lastConnection: "none 0"})
		if err != nil {
			t.Fatal(err)
		}
		tub.detach(peer, slot)
	}
	if n := len(tub.seqs); n > maxPeerSeqs {
		t.Errorf("seq table has %d entries, bound is %d", n, maxPeerSeqs)
	}
	if n := len(tub.peers); n != 0 {
		t.Errorf("%d peers left after every connection detached", n)
	}
}
