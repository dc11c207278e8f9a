package tubfarm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/httpstorage"
	"github.com/tubfarm/tubfarm/messages"
	"github.com/tubfarm/tubfarm/storage"
)

// connector is the actors.Connector that joins the pieces: hints decides
// which hints may be dialed and by which handler, hints.Transports dials
// them (with per-identity Tor credentials and I2P sessions), foolscap
// negotiates and runs PB, and getReference turns the FURL's swissnum into
// the server's storage reference.
type connector struct {
	tr       *hints.Transports
	conn     foolscap.ConnConfig // template for every connection's PB layer
	tlsTweak func(*tls.Config)   // tests only
	https    httpsOptions

	mu    sync.Mutex
	peers map[string]*peerState // by server ID
}

// peerState is what one server's current identity (by its actors.Identity
// Key) remembers between its connections: the incarnation it presents and Foolscap's
// duplicate-connection state (docs/foolscap-protocol.md §3.5). With a fresh identity
// per attempt it is used once; with one identity per server it lets a
// reconnect replace the old connection instead of being refused as a
// duplicate.
type peerState struct {
	key         string // the identity's actors.Identity.Key
	incarnation string
	last        *foolscap.LastConnection
}

func newConnector(tr *hints.Transports, cc foolscap.ConnConfig) *connector {
	return &connector{tr: tr, conn: cc, peers: make(map[string]*peerState)}
}

// peer returns the state of server id for the identity named key,
// replacing (and retiring the transports of) a previous identity's.
func (c *connector) peer(id, key string) *peerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peers[id]
	if p != nil && p.key == key {
		return p
	}
	if p != nil {
		c.tr.Retire(p.key)
	}
	p = &peerState{key: key, incarnation: foolscap.NewIncarnation(), last: new(foolscap.LastConnection)}
	c.peers[id] = p
	return p
}

// forget drops the state of servers no longer in the map and retires their
// identities' transports (closing their I2P sessions).
func (c *connector) forget(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if p := c.peers[id]; p != nil {
			c.tr.Retire(p.key)
			delete(c.peers, id)
		}
	}
}

// MaxDialHints is the most connection hints one attempt dials, in FURL
// order; the others are reported as not tried. Foolscap dials every hint at
// once, so without a bound an announcement written by a stranger could make
// each attempt open thousands of connections.
const MaxDialHints = 16

// The status reported for each hint (or NURL) past MaxDialHints, made once.
var (
	notTriedHint = fmt.Sprintf("not tried: only the first %d usable hints are dialed", MaxDialHints)
	notTriedNURL = fmt.Sprintf("not tried: only the first %d usable NURLs are dialed", MaxDialHints)
)

// errNoUsableHints is returned when policy leaves no hint to dial.
var errNoUsableHints = errors.New("tubfarm: no usable connection hints")

// Connect uses the protocol the spec asks for (see chooseProtocol).
func (c *connector) Connect(ctx context.Context, srv messages.ServerSpec, id *actors.Identity, report func(hint, status string)) (actors.Session, error) {
	for _, b := range srv.BadNURLs {
		report(b.NURL, "bad NURL: "+b.Reason)
	}
	if srv.Protocol == httpstorage.ProtoHTTPS {
		return c.connectHTTPS(ctx, srv, id, report)
	}
	s, err := c.dial(ctx, srv, id, report)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// dial connects to srv's FURL under its policy, presenting id (its
// certificate is made once a connection is up), and resolves the FURL's
// swissnum: everything a session needs, for storage servers and
// introducers alike.
func (c *connector) dial(ctx context.Context, srv messages.ServerSpec, id *actors.Identity, report func(hint, status string)) (*session, error) {
	furl := srv.FURL
	dialers := c.tr.ForIdentity(id.Key)
	var targets []foolscap.Target
	for _, d := range srv.Policy.DecideFURL(furl) {
		if !d.Usable {
			report(d.Raw, d.Status)
			continue
		}
		dial := dialers[d.Handler]
		if dial == nil {
			report(d.Raw, "bad hint: no handler registered")
			continue
		}
		if len(targets) == MaxDialHints {
			report(d.Raw, notTriedHint)
			continue
		}
		targets = append(targets, foolscap.Target{
			Hint:    d.Raw,
			Addr:    d.Hint.Addr(),
			Host:    d.Hint.Host,
			Handler: string(d.Handler),
			Dial:    dial,
		})
	}
	if len(targets) == 0 {
		return nil, &actors.ConnectError{Reason: actors.ReasonNoHints, Permanent: true, Err: errNoUsableHints}
	}
	p := c.peer(srv.ID, id.Key)
	conn, info, err := foolscap.Dial(ctx, foolscap.DialConfig{
		MakeIdentity:   id.Certificate,
		Incarnation:    p.incarnation,
		TubID:          furl.TubID,
		Targets:        targets,
		ConnConfig:     c.conn,
		TLSConfig:      noResumption(c.tlsTweak),
		LastConnection: p.last,
		OnStatus:       report,
		Timeout:        -1, // the broker's ConnectTimeout bounds ctx
	})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ref, err := conn.GetReference(ctx, furl.Name)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("getReference: %w", err)
	}
	return &session{
		conn: conn,
		ref:  ref,
		info: actors.SessionInfo{
			Protocol:   storage.ProtoFoolscap,
			Hint:       info.WinningHint,
			Handler:    info.Handler,
			TLSVersion: info.TLSVersion,
			PeerTubID:  info.PeerTubID,
			Timings: actors.PhaseTimings{
				Dial:         info.Timings.Dial,
				Upgrade:      info.Timings.Upgrade,
				TLS:          info.Timings.TLS,
				Negotiation:  info.Timings.Negotiation,
				GetReference: time.Since(start),
			},
		},
	}, nil
}

// noResumption applies tweak and then turns TLS session resumption off
// again, whatever tweak did. A resumed TLS 1.3 session sends no client
// certificate: the server would see the identity of the session's first
// connection, linking identities that must stay apart.
func noResumption(tweak func(*tls.Config)) func(*tls.Config) {
	return func(c *tls.Config) {
		if tweak != nil {
			tweak(c)
		}
		c.ClientSessionCache = nil
		c.SessionTicketsDisabled = true
	}
}

// session is a live Foolscap connection and the server's storage reference.
type session struct {
	conn *foolscap.Conn
	ref  *foolscap.RemoteRef
	info actors.SessionInfo
}

func (s *session) Call(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	return s.ref.Call(ctx, method, args, kwargs)
}
func (s *session) Done() <-chan struct{}    { return s.conn.Done() }
func (s *session) Err() error               { return s.conn.Err() }
func (s *session) Close() error             { return s.conn.Close() }
func (s *session) LastReceived() time.Time  { return s.conn.LastReceived() }
func (s *session) Info() actors.SessionInfo { return s.info }
func (s *session) Ref() *foolscap.RemoteRef { return s.ref }

// Storage returns the typed storage API over the session's reference.
func (s *session) Storage() storage.Server { return storage.NewFoolscap(s.ref) }
