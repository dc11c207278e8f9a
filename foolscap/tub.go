package foolscap

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	tubtls "github.com/tubfarm/tubfarm/tls"
)

// ErrNoLocation means [Tub.Register] was called before [Tub.SetLocation]:
// a FURL without connection hints could not be used by anyone.
var ErrNoLocation = errors.New("foolscap: tub has no location; call SetLocation before Register")

// maxPeerSeqs bounds the per-peer seqnum table of a Tub (Foolscap's
// master_table, which is never pruned). Forgetting an entry only makes the
// next seqnum for that peer restart at 1.
const maxPeerSeqs = 10000

// Tub is one Foolscap identity that accepts connections: a certificate (a
// persistent node.pem or an ephemeral one), an incarnation, and a registry of
// objects reachable by name (swissnum). Serve it with [Listener.AddTub].
//
// A Tub also tracks its live inbound connections per peer TubID, to apply
// Foolscap's duplicate-connection rules (docs/foolscap-protocol.md §3.5). A Tub is
// safe for concurrent use.
type Tub struct {
	id          *tubtls.Identity
	incarnation string

	mu       sync.Mutex
	location []string
	objects  map[string]Referenceable
	names    map[Referenceable]string // reverse of objects
	peers    map[string]*peerConn     // live connections by peer TubID
	seqs     map[string]uint64        // last seqnum we issued as master, by peer TubID
}

// peerConn is what the Tub knows about its connection to one peer.
type peerConn struct {
	conn    io.Closer // the PB connection; nil until it has started
	slaveIR string    // the peer's incarnation, when we were master
	seq     uint64    // the seqnum we issued, when we were master
	master  bool
	closed  bool // replaced; close conn as soon as it is set
}

// NewTub returns a Tub for id with a fresh incarnation and no location.
func NewTub(id *tubtls.Identity) *Tub {
	return &Tub{
		id:          id,
		incarnation: NewIncarnation(),
		objects:     map[string]Referenceable{},
		names:       map[Referenceable]string{},
		peers:       map[string]*peerConn{},
		seqs:        map[string]uint64{},
	}
}

// TubID returns the Tub's TubID.
func (t *Tub) TubID() string { return t.id.TubID }

// Identity returns the Tub's identity.
func (t *Tub) Identity() *tubtls.Identity { return t.id }

// Incarnation returns the Tub's my-incarnation string.
func (t *Tub) Incarnation() string { return t.incarnation }

// SetLocation sets the connection hints put in the FURLs that Register
// returns, e.g. "tcp:127.0.0.1:4567".
func (t *Tub) SetLocation(hints ...string) {
	t.mu.Lock()
	t.location = append([]string(nil), hints...)
	t.mu.Unlock()
}

// Register makes obj reachable under name and returns its FURL. An empty
// name means a fresh random swissnum of 32 base32 characters (160 bits, as
// Foolscap makes). Registering a name that is taken is an error; so is
// registering before SetLocation.
func (t *Tub) Register(obj Referenceable, name string) (furl string, err error) {
	if obj == nil {
		return "", errors.New("foolscap: Register of a nil object")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.location) == 0 {
		return "", ErrNoLocation
	}
	if name == "" {
		name = NewSwissnum()
	} else if strings.ContainsAny(name, "\x00") {
		return "", fmt.Errorf("foolscap: Register: name %q contains NUL", name)
	}
	if _, ok := t.objects[name]; ok {
		return "", fmt.Errorf("foolscap: Register: name %q is already registered", name)
	}
	t.objects[name] = obj
	if _, ok := t.names[obj]; !ok {
		t.names[obj] = name
	}
	return t.furlLocked(name), nil
}

// Unregister removes the object registered under name. Connections that
// already hold a reference to it keep it.
func (t *Tub) Unregister(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	obj, ok := t.objects[name]
	if !ok {
		return
	}
	delete(t.objects, name)
	if t.names[obj] == name {
		delete(t.names, obj)
		for n, o := range t.objects { // another name for the same object
			if o == obj {
				t.names[obj] = n
				break
			}
		}
	}
}

// Lookup returns the object registered under name. It is the Lookup of the
// PB connections the Tub accepts.
func (t *Tub) Lookup(name []byte) (Referenceable, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	obj, ok := t.objects[string(name)]
	return obj, ok
}

// referenceURL is the ReferenceURL of the Tub's connections: the FURL of a
// registered object, "" for others (Foolscap would register them under a
// random name; we do not keep objects alive that nobody registered).
func (t *Tub) referenceURL(obj Referenceable) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if name, ok := t.names[obj]; ok {
		return t.furlLocked(name)
	}
	return ""
}

// FURL returns the FURL of name with the current location, registered or
// not.
func (t *Tub) FURL(name string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.furlLocked(name)
}

func (t *Tub) furlLocked(name string) string {
	return "pb://" + t.id.TubID + "@" + strings.Join(t.location, ",") + "/" + name
}

var swissEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSwissnum returns a random object name: 160 bits as 32 lowercase base32
// characters.
func NewSwissnum() string {
	var b [20]byte
	rand.Read(b[:])
	return strings.ToLower(swissEncoding.EncodeToString(b[:]))
}

// offer is the part of a peer's hello that duplicate resolution looks at.
type offer struct {
	incarnation    string
	lastConnection string // "" if the key was absent
}

// decideAsMaster applies Foolscap's compareOfferAndExisting to a new offer
// from peer while we are the master. If it accepts, it reserves the peer
// slot for the new connection (replacing and returning any existing one,
// which the caller must close) and returns the seqnum to put in the
// decision. The returned *peerConn is the reservation, to be passed to
// attach.
func (t *Tub) decideAsMaster(peer string, o offer) (slot *peerConn, seq uint64, old *peerConn, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ex := t.peers[peer]; ex != nil && !t.acceptOfferLocked(o, ex) {
		//lint:ignore ST1005 Foolscap's own text, sent to the peer as is
		return nil, 0, nil, errors.New(msgDuplicate)
	}
	old = t.peers[peer]
	seq = t.seqs[peer] + 1
	if _, ok := t.seqs[peer]; !ok && len(t.seqs) >= maxPeerSeqs {
		for k := range t.seqs { // evict an arbitrary entry
			delete(t.seqs, k)
			break
		}
	}
	t.seqs[peer] = seq
	slot = &peerConn{slaveIR: o.incarnation, seq: seq, master: true}
	t.peers[peer] = slot
	if old != nil {
		old.closed = true
	}
	return slot, seq, old, nil
}

// acceptOfferLocked is compareOfferAndExisting (docs/foolscap-protocol.md §3.5).
func (t *Tub) acceptOfferLocked(o offer, ex *peerConn) bool {
	if o.incarnation == "" || o.lastConnection == "" {
		return false // pre-0.2.0 peer; handle-old-duplicate-connections is not implemented
	}
	if !ex.master {
		// Unreachable (the role depends only on the two TubIDs); Foolscap
		// has no slave incarnation for such a connection and accepts.
		return true
	}
	if o.incarnation != ex.slaveIR {
		return true // the peer restarted
	}
	ir, seqStr, _ := strings.Cut(o.lastConnection, " ")
	if ir == "none" {
		return false // a parallel attempt of a peer that never heard our decision
	}
	if ir != t.incarnation {
		return true // the peer remembers one of our past lives
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(seqStr), 10, 64)
	if err != nil {
		return false
	}
	return seq == ex.seq // equal: our connection is stale; lower: parallel or stale offer; higher: weird
}

// acceptAsSlave reserves the peer slot for a connection the peer (as
// master) decided on; Foolscap's slave drops its existing connection.
func (t *Tub) acceptAsSlave(peer, peerIncarnation string) (slot, old *peerConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old = t.peers[peer]
	if old != nil {
		old.closed = true
	}
	slot = &peerConn{slaveIR: peerIncarnation}
	t.peers[peer] = slot
	return slot, old
}

// attach records the PB connection of a reserved slot. It reports false
// if the slot was replaced meanwhile, in which case the caller closes c.
func (t *Tub) attach(slot *peerConn, c io.Closer) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	slot.conn = c
	return !slot.closed
}

// detach forgets slot when its connection has ended.
func (t *Tub) detach(peer string, slot *peerConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.peers[peer] == slot {
		delete(t.peers, peer)
	}
}

// closeReplaced closes the connection of a replaced slot, if it has one
// yet; otherwise attach will report the replacement.
func (t *Tub) closeReplaced(old *peerConn) {
	if old == nil {
		return
	}
	t.mu.Lock()
	c := old.conn
	t.mu.Unlock()
	if c != nil {
		c.Close()
	}
}
