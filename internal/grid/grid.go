// Package grid runs small grids of Foolscap storage servers made with
// tubfarm's own listener, and writes Tahoe node directories that point at
// them. The demo, the tests and the benchmarks share it.
//
// Each server has its own persistent-for-the-run Tub identity and Ed25519
// announcement key, hosts an object that answers get_version like a
// Tahoe-LAFS storage server, and records the TubID of every client that
// connects to it, so that a test can check that no two servers saw the same
// client.
package grid

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/memstore"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// StorageInterface is the RemoteInterface name of Tahoe's storage server.
const StorageInterface = "RIStorageServer.tahoe.allmydata.com"

// StorageVersionKey is the key of the storage protocol's version dict in a
// get_version answer.
const StorageVersionKey = "http://allmydata.org/tahoe/protocols/storage/v1"

// Server is one storage server of a grid.
type Server struct {
	// ID is the server's Tahoe id, "v0-" + base32 of its Ed25519 key.
	ID       string
	Nickname string
	Key      ed25519.PrivateKey
	Tub      *foolscap.Tub
	// FURL is the storage FURL (anonymous-storage-FURL).
	FURL string
	// NURL is the HTTPS storage NURL (anonymous-storage-NURLs), on the
	// same port as the FURL; zero unless Options.HTTPS.
	NURL hints.NURL
	// Store holds the server's shares, whichever protocol wrote them.
	Store *memstore.Store

	grid    *Grid
	ln      *foolscap.Listener // own listener, unless the grid shares one
	mux     *memstore.Mux      // with Options.HTTPS: ln's port, both protocols
	addr    string             // own listener's address, kept across restarts
	swiss   string
	seed    string // permutation-seed-base32: base32 of the first 16 key bytes, as Tahoe
	obj     *storage
	mu      sync.Mutex
	clients []string      // client TubIDs seen, in order
	changed chan struct{} // closed and replaced when clients grows
	seen    chan string
}

// Options configures Start.
type Options struct {
	// Shared puts every server behind one listener (one port, dispatch by
	// TubID); otherwise each server has its own port and can be stopped and
	// restarted on it.
	Shared bool
	// Version is the application-version each server reports.
	Version string
	// ConnConfig is the PB template of accepted connections.
	ConnConfig foolscap.ConnConfig
	// HTTPS makes each server also serve HTTPS storage on its port (the
	// first bytes of a connection decide, as in Tahoe) and announce a
	// NURL beside its FURL. Not with Shared.
	HTTPS bool
}

// Grid is a running set of servers on 127.0.0.1.
type Grid struct {
	Servers []*Server
	opts    Options
	shared  *foolscap.Listener
}

// Start starts n servers named nick-1 ... nick-n on 127.0.0.1.
func Start(ctx context.Context, n int, nick string, opts Options) (*Grid, error) {
	if opts.Version == "" {
		opts.Version = "tahoe-lafs/1.20.0"
	}
	g := &Grid{opts: opts}
	if opts.Shared && opts.HTTPS {
		return nil, fmt.Errorf("grid: HTTPS needs a port per server, not Shared")
	}
	if opts.Shared {
		ln, err := foolscap.Listen(ctx, "tcp", "127.0.0.1:0", g.listenConfig())
		if err != nil {
			return nil, err
		}
		g.shared = ln
	}
	for i := range n {
		s, err := g.newServer(ctx, fmt.Sprintf("%s-%d", nick, i+1))
		if err != nil {
			g.Close()
			return nil, err
		}
		g.Servers = append(g.Servers, s)
	}
	return g, nil
}

func (g *Grid) listenConfig() foolscap.ListenConfig {
	return foolscap.ListenConfig{
		ConnConfig: g.opts.ConnConfig,
		OnConnect: func(tub *foolscap.Tub, peer string, _ *foolscap.Conn) {
			for _, s := range g.Servers {
				if s.Tub == tub {
					s.record(peer)
				}
			}
		},
	}
}

func (g *Grid) newServer(ctx context.Context, nick string) (*Server, error) {
	id, err := tubtls.NewEphemeral()
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	s := &Server{
		ID:       config.FormatServerKey(pub),
		Nickname: nick,
		Key:      priv,
		Tub:      foolscap.NewTub(id),
		grid:     g,
		swiss:    foolscap.NewSwissnum(),
		seen:     make(chan string, 1024),
		seed:     strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(pub[:16])),
	}
	s.Store = memstore.New(memstore.Config{Version: g.opts.Version})
	s.obj = &storage{store: s.Store, nick: nick}
	s.obj.Referenceable = s.Store.Foolscap(s.obj.extra)
	ln := g.shared
	if ln == nil {
		if ln, err = s.listen(ctx, "127.0.0.1:0"); err != nil {
			return nil, err
		}
		s.addr = ln.Addr().String()
	}
	hint := "tcp:" + ln.Addr().String()
	s.Tub.SetLocation(hint)
	if s.FURL, err = s.Tub.Register(s.obj, s.swiss); err != nil {
		return nil, err
	}
	if g.opts.HTTPS {
		if s.NURL, err = hints.FormatNURL(id.Certificate.Leaf, hint, s.swiss); err != nil {
			return nil, err
		}
	}
	ln.AddTub(s.Tub)
	return s, nil
}

// listen opens the server's own port: Foolscap alone, or with
// Options.HTTPS both protocols through a memstore.Mux.
func (s *Server) listen(ctx context.Context, addr string) (*foolscap.Listener, error) {
	if !s.grid.opts.HTTPS {
		ln, err := foolscap.Listen(ctx, "tcp", addr, s.grid.listenConfig())
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.ln = ln
		s.mu.Unlock()
		return ln, nil
	}
	raw, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	m := memstore.Serve(raw, memstore.ServeConfig{
		Foolscap: s.grid.listenConfig(),
		Cert:     s.Tub.Identity().Certificate,
		Handler:  s.Store.HTTP(s.swiss),
	})
	s.mu.Lock()
	s.ln, s.mux = m.Foolscap, m
	s.mu.Unlock()
	return m.Foolscap, nil
}

// closeOwn closes the server's own port and every connection on it.
func (s *Server) closeOwn() error {
	s.mu.Lock()
	ln, m := s.ln, s.mux
	s.mu.Unlock()
	if m != nil {
		return m.Close()
	}
	return ln.Close()
}

func (s *Server) record(peer string) {
	s.mu.Lock()
	s.clients = append(s.clients, peer)
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.mu.Unlock()
	select {
	case s.seen <- peer:
	default:
	}
}

// Clients returns the client TubIDs this server has seen, in order.
func (s *Server) Clients() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.clients)
}

// WaitClients waits until the server has seen at least n client
// connections and returns their TubIDs, or returns what it has with ctx's
// error. The listener records a client in its own goroutine, so a client
// can see its connection established a moment before the server has
// recorded it: code that checks what a server saw right after connecting
// must wait here rather than read Clients.
func (s *Server) WaitClients(ctx context.Context, n int) ([]string, error) {
	for {
		s.mu.Lock()
		if len(s.clients) >= n {
			c := slices.Clone(s.clients)
			s.mu.Unlock()
			return c, nil
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return s.Clients(), ctx.Err()
		}
	}
}

// Seen delivers each client TubID as it connects (buffered; extra ones are
// dropped if nobody reads).
func (s *Server) Seen() <-chan string { return s.seen }

// Calls returns how many remote calls the server has answered.
func (s *Server) Calls() int64 { return s.obj.calls.Load() }

// Addr returns the server's listening address.
func (s *Server) Addr() string {
	if s.ln != nil {
		return s.addr
	}
	return s.grid.shared.Addr().String()
}

// Stop closes the server's own listener and every connection it accepted,
// as if the server process died. It is an error on a shared grid.
func (s *Server) Stop() error {
	if s.ln == nil {
		return fmt.Errorf("grid: %s shares a listener and cannot be stopped alone", s.Nickname)
	}
	return s.closeOwn()
}

// Restart listens again on the same address with the same identity.
func (s *Server) Restart(ctx context.Context) error {
	if s.ln == nil {
		return fmt.Errorf("grid: %s shares a listener and cannot be restarted alone", s.Nickname)
	}
	ln, err := s.listen(ctx, s.addr)
	if err != nil {
		return err
	}
	ln.AddTub(s.Tub)
	return nil
}

// Announcement returns the server's storage announcement fields, with
// seqnum.
func (s *Server) Announcement(seqnum int64) map[string]any {
	ann := map[string]any{
		"anonymous-storage-FURL":  s.FURL,
		"app-versions":            []any{},
		"my-version":              s.grid.opts.Version,
		"nickname":                s.Nickname,
		"nonce":                   fmt.Sprintf("nonce-%d", seqnum),
		"oldest-supported":        "tahoe-lafs/1.0.0",
		"permutation-seed-base32": s.seed,
		"seqnum":                  seqnum,
		"service-name":            "storage",
		"version":                 0,
	}
	if s.grid.opts.HTTPS {
		ann[config.FieldNURLs] = []any{s.NURL.String()}
	}
	return ann
}

// Signed returns the server's announcement signed with its key.
func (s *Server) Signed(seqnum int64) (config.Signed, error) {
	return config.Sign(s.Key, s.Announcement(seqnum))
}

// Close stops every listener.
func (g *Grid) Close() {
	if g.shared != nil {
		g.shared.Close()
	}
	for _, s := range g.Servers {
		if s.addr != "" {
			s.closeOwn()
		}
	}
}

// NodeDir describes a node directory to write with WriteNodeDir.
type NodeDir struct {
	// TahoeCfg is the content of tahoe.cfg; if empty, a client that
	// reveals its IP and connects directly.
	TahoeCfg string
	// Introducers maps petname to the servers whose signed announcements
	// go into that introducer's cache (seqnum 1).
	Introducers map[string][]*Server
	// IntroducerFURLs maps petname to the FURL of a live introducer
	// (introducerserver); these get no cache file unless Introducers
	// also lists them. Petnames only in Introducers get a FURL nobody
	// listens on.
	IntroducerFURLs map[string]string
	// Static servers go into servers.yaml, each with an optional
	// connections: override.
	Static []*Server
	// Connections maps a static server's ID to its connections: override.
	Connections map[string]map[string]string
}

// DefaultTahoeCfg is a client that connects directly.
const DefaultTahoeCfg = "[node]\nnickname = tubfarm-test\ntub.port = disabled\ntub.location = disabled\n"

// WriteNodeDir writes a Tahoe node directory at dir.
func WriteNodeDir(dir string, nd NodeDir) error {
	if err := os.MkdirAll(filepath.Join(dir, "private"), 0o700); err != nil {
		return err
	}
	cfg := nd.TahoeCfg
	if cfg == "" {
		cfg = DefaultTahoeCfg
	}
	if err := os.WriteFile(config.TahoeCfgPath(dir), []byte(cfg), 0o600); err != nil {
		return err
	}
	if len(nd.Introducers) > 0 || len(nd.IntroducerFURLs) > 0 {
		var sb strings.Builder
		sb.WriteString("introducers:\n")
		pets := map[string]bool{}
		for p := range nd.Introducers {
			pets[p] = true
		}
		for p := range nd.IntroducerFURLs {
			pets[p] = true
		}
		for _, pet := range sortedKeys(pets) {
			furl := nd.IntroducerFURLs[pet]
			if furl == "" {
				furl = "pb://" + strings.Repeat("a", 32) + "@tcp:127.0.0.1:1/introducer"
			}
			fmt.Fprintf(&sb, "  %s:\n    furl: %s\n", pet, furl)
			if _, ok := nd.Introducers[pet]; !ok {
				continue
			}
			var entries []config.CacheEntry
			for _, s := range nd.Introducers[pet] {
				signed, err := s.Signed(1)
				if err != nil {
					return err
				}
				a, err := signed.Verify()
				if err != nil {
					return err
				}
				entries = append(entries, config.CacheEntry{Key: s.ID, Announcement: a, Signed: &signed})
			}
			if err := config.WriteCache(config.CachePath(dir, pet), entries); err != nil {
				return err
			}
		}
		if err := os.WriteFile(config.IntroducersPath(dir), []byte(sb.String()), 0o600); err != nil {
			return err
		}
	}
	return os.WriteFile(config.ServersPath(dir), []byte(ServersYAML(nd.Static, nd.Connections)), 0o600)
}

// ServersYAML returns a servers.yaml listing servers.
func ServersYAML(servers []*Server, conns map[string]map[string]string) string {
	var sb strings.Builder
	sb.WriteString("storage:\n")
	if len(servers) == 0 {
		return "storage: {}\n"
	}
	for _, s := range servers {
		fmt.Fprintf(&sb, "  %s:\n    ann:\n      nickname: %s\n      anonymous-storage-FURL: %s\n", s.ID, s.Nickname, s.FURL)
		if s.grid != nil && s.grid.opts.HTTPS {
			fmt.Fprintf(&sb, "      %s:\n        - %q\n", config.FieldNURLs, s.NURL.String())
		}
		if c := conns[s.ID]; len(c) > 0 {
			sb.WriteString("    connections:\n")
			for _, k := range sortedKeys(c) {
				fmt.Fprintf(&sb, "      %s: %s\n", k, c[k])
			}
		}
	}
	return sb.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Dial is a net.Dialer's DialContext, for grids whose clients need one.
var Dial = (&net.Dialer{}).DialContext
