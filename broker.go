package tubfarm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/messages"
	"github.com/tubfarm/tubfarm/storage"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// Options configures a [Broker]. The zero value is ready to use: it logs to
// slog.Default, registers no metrics, gives every connection attempt a fresh
// identity, and watches servers.yaml for changes every two seconds.
type Options struct {
	// Logger receives the broker's logs (and protoactor-go's, under
	// lib=protoactor). If nil, slog.Default() is used.
	Logger *slog.Logger

	// Registerer, if set, receives the broker's Prometheus metrics
	// (docs/metrics.md). Close unregisters them.
	Registerer prometheus.Registerer

	// Identity says how often a server's ephemeral identity is renewed:
	// actors.PerAttempt (the zero value: a fresh identity for every
	// connection attempt, the strongest unlinkability) or actors.PerServer
	// (one identity per server for the life of the process, as Tahoe-LAFS
	// does).
	Identity actors.IdentityPolicy

	// Backoff spaces reconnection attempts. If zero, actors.DefaultBackoff.
	Backoff actors.Backoff

	// ConnectTimeout bounds one connection attempt. If zero,
	// actors.DefaultConnectTimeout (120 s, as Foolscap).
	ConnectTimeout time.Duration

	// WatchInterval is how often servers.yaml is checked for changes and
	// reloaded. If zero, 2 s; if negative, the
	// files are not watched (call Reload instead).
	WatchInterval time.Duration

	// OnReload, if set, is called after each reload that the file watch
	// triggers, with its error (nil on success). It must not block.
	OnReload func(error)

	// DisableTorIsolation stops giving each identity its own SOCKS5
	// credentials, so that all servers may share Tor circuits (Foolscap's
	// behaviour). Isolation is on by default.
	DisableTorIsolation bool

	// Decorrelate, if positive, spreads each server's first connection and
	// each reconnection by an independent random delay within this window,
	// so that colluding servers cannot link a client's connections by when
	// they arrive. See actors.Config.Decorrelate.
	Decorrelate time.Duration

	// IsolatedBackoff stops a server's connection from resetting the other
	// servers' backoff (Tahoe's behaviour, kept by default).
	IsolatedBackoff bool

	// FoolscapFallback lets a server whose NURLs all fail in an attempt
	// be tried over its FURL in the same attempt. Off by default, as in
	// Tahoe; when it happens the server's hint statuses say so and its
	// status shows protocol "foolscap" (docs/storage.md).
	FoolscapFallback bool

	// HTTPSPoll is how often an HTTPS storage session checks that its
	// server still answers (DefaultHTTPSPoll if zero), timed by the broker's
	// clock (actors.WithClock in TestHooks.ActorOptions).
	HTTPSPoll time.Duration

	// Introducers configures discovery through the node's introducers
	// (docs/introducers.md).
	Introducers IntroducerOptions

	// TestHooks are seams for tests and benchmarks. A program leaves it
	// nil.
	TestHooks *TestHooks
}

// TestHooks replace parts of a Broker that tests and benchmarks need to
// watch or control. Each one can undo a privacy property (a resolver that
// leaks names, a TLS tweak that resumes sessions, one identity for every
// server), which is why they are kept apart from Options' settings: a
// program has no use for them.
type TestHooks struct {
	// Direct, if set, replaces the dialer for direct TCP connections, for
	// instance with a tripwire that fails the test when called.
	Direct hints.DialFunc

	// Resolver, if set, resolves host names for direct TCP connections
	// (Direct takes precedence). Proxied connections (Tor, I2P) never
	// resolve anything locally, whatever this is.
	Resolver hints.Resolver

	// TLSConfig, if set, adjusts each client TLS configuration (for
	// instance MaxVersion). Session resumption stays off whatever it does.
	TLSConfig func(*tls.Config)

	// ActorOptions are passed on to actors.New for servers and
	// introducers alike: actors.WithClock, actors.WithRand,
	// actors.WithIdentitySource.
	ActorOptions []actors.Option
}

// hooks returns the test hooks, never nil.
func (o *Options) hooks() *TestHooks {
	if o.TestHooks == nil {
		return &TestHooks{}
	}
	return o.TestHooks
}

// A Broker keeps one connection, each with its own ephemeral identity, to
// every storage server of a node's merged server map, and reconnects with
// backoff. It is safe for concurrent use.
type Broker struct {
	opts Options
	log  *slog.Logger
	ab   *actors.Broker
	tr   *hints.Transports
	cn   *connector
	disc *discovery

	reloadMu sync.Mutex   // serialises reloads, so that the last file read is applied last
	mu       sync.Mutex   // serialises applying reloads and announcements; guards node
	node     *config.Node // the last good node state

	watchStop chan struct{}
	watchDone chan struct{}
	closeOnce sync.Once
}

// Open reads the Tahoe node directory dir (creating private/node.pem if it
// is missing), and starts a broker on its merged server map.
func Open(dir string, opts Options) (*Broker, error) {
	node, err := config.Open(dir)
	if err != nil {
		return nil, err
	}
	return New(node, opts)
}

// New starts a broker on an already loaded node. node.Dir is used for
// reloads, announcements and the file watch; it may be empty for a node
// built in memory, in which case nothing is watched or written.
func New(node *config.Node, opts Options) (*Broker, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	tr, err := newTransports(node.Config, opts)
	if err != nil {
		return nil, err
	}
	cc := foolscap.ConnConfig{
		KeepaliveTimeout:  node.Config.KeepAlive,
		DisconnectTimeout: node.Config.Disconnect,
		Logger:            log,
	}
	cn := newConnector(tr, cc)
	cn.tlsTweak = opts.hooks().TLSConfig
	cn.https = httpsOptions{fallback: opts.FoolscapFallback, poll: opts.HTTPSPoll}
	aopts := append([]actors.Option{actors.WithLogger(log)}, opts.hooks().ActorOptions...)
	if opts.Registerer != nil {
		aopts = append(aopts, actors.WithRegisterer(opts.Registerer))
	}
	ab, err := actors.New(actors.Config{
		Connector:       cn,
		Identity:        opts.Identity,
		Backoff:         opts.Backoff,
		ConnectTimeout:  opts.ConnectTimeout,
		Decorrelate:     opts.Decorrelate,
		IsolatedBackoff: opts.IsolatedBackoff,
	}, aopts...)
	if err != nil {
		tr.Close()
		return nil, err
	}
	cn.https.clock = ab.Clock()
	b := &Broker{opts: opts, log: log, ab: ab, tr: tr, cn: cn, node: node}
	if err := ab.Apply(specs(node)); err != nil {
		b.Close()
		return nil, err
	}
	// Cached announcements are in node.Map already: their servers connect
	// before any introducer answers.
	introOpts := append([]actors.Option{actors.WithLogger(log)}, opts.hooks().ActorOptions...)
	if b.disc, err = newDiscovery(b, node, opts, introOpts); err != nil {
		b.Close()
		return nil, err
	}
	for _, w := range node.Warnings {
		log.Warn("tubfarm: node directory", slog.Any("warning", w))
	}
	warnRevealing(log, node, node.Map.IDs())
	warnNURLs(log, node, node.Map.IDs())
	if node.Dir != "" && opts.WatchInterval >= 0 {
		b.startWatch()
	}
	return b, nil
}

// newTransports builds the node's dialers from tahoe.cfg: direct TCP
// always, Tor through its SOCKS port unless [tor] enabled = false, I2P
// through the SAM bridge unless [i2p] enabled = false.
func newTransports(cfg *config.TahoeConfig, opts Options) (*hints.Transports, error) {
	h := opts.hooks()
	tc := hints.TransportConfig{Direct: h.Direct}
	if tc.Direct == nil && h.Resolver != nil {
		tc.Direct = hints.DirectTCPWithResolver(nil, h.Resolver)
	}
	if cfg.Tor.Enabled {
		if cfg.Tor.Launch {
			return nil, fmt.Errorf("tubfarm: %s: [tor] launch = true is not supported: run Tor yourself and set [tor] socks.port", cfg.Path)
		}
		if cfg.Tor.ControlPort != "" && cfg.Tor.SocksPort == "" {
			return nil, fmt.Errorf("tubfarm: %s: [tor] control.port without socks.port is not supported: set [tor] socks.port", cfg.Path)
		}
		tc.Tor = &hints.TorConfig{SOCKSPort: cfg.Tor.SocksPort, DisableIsolation: opts.DisableTorIsolation}
	}
	if cfg.I2P.Enabled {
		if cfg.I2P.Launch || cfg.I2P.ConfigDir != "" && cfg.I2P.SAMPort == "" {
			return nil, fmt.Errorf("tubfarm: %s: [i2p] launch and i2p.configdir are not supported: run an I2P router and set [i2p] sam.port", cfg.Path)
		}
		addr := hints.DefaultSAMAddr
		if cfg.I2P.SAMPort != "" {
			var err error
			if addr, err = hints.ParseEndpoint("[i2p] sam.port", cfg.I2P.SAMPort); err != nil {
				return nil, fmt.Errorf("tubfarm: %s: %w", cfg.Path, err)
			}
		}
		tc.I2P = &hints.SAMConfig{Addr: addr}
	}
	return hints.NewTransports(tc)
}

// warnRevealing logs a warning for each of the servers ids that will be
// dialed directly over TCP although "[node] reveal-IP-address = false": a
// servers.yaml connections: override allows it, as in Tahoe-LAFS, and the
// exception must not go unnoticed.
func warnRevealing(log *slog.Logger, node *config.Node, ids []string) {
	if node.Config.RevealIP {
		return
	}
	for _, id := range ids {
		if e, ok := node.Map.Get(id); ok && e.Policy.RevealsIP() {
			log.Warn("tubfarm: server reveals the IP address: its connections override allows direct TCP although reveal-IP-address = false",
				slog.String("server", id), slog.String("nickname", e.Nickname))
		}
	}
}

// warnNURLs logs each NURL of the servers ids that did not parse; the
// server keeps its other NURLs, or Foolscap.
func warnNURLs(log *slog.Logger, node *config.Node, ids []string) {
	for _, id := range ids {
		e, ok := node.Map.Get(id)
		if !ok {
			continue
		}
		for _, err := range e.NURLErrors {
			log.Warn("tubfarm: server has an unusable NURL; it is left out", slog.String("server", id), slog.Any("error", err))
		}
	}
}

// specs turns the node's merged map into the broker's server specs.
func specs(node *config.Node) []messages.ServerSpec {
	var out []messages.ServerSpec
	for e := range node.Map.All() {
		out = append(out, spec(e, node.Config.ForceFoolscap))
	}
	return out
}

func spec(e config.Entry, forceFoolscap bool) messages.ServerSpec {
	proto := chooseProtocol(e.NURLs, forceFoolscap)
	return messages.ServerSpec{
		ID:           e.ID,
		Nickname:     e.Nickname,
		FURL:         e.FURL,
		NURLs:        slices.Clone(e.NURLs),
		BadNURLs:     badNURLs(e.NURLErrors),
		Protocol:     proto,
		Announcement: e.Announcement.Fields(),
		Source:       sourceString(e.Source),
		RevealsIP:    e.Policy.RevealsIP(),
		Policy:       e.Policy,
	}
}

func sourceString(s config.Source) string {
	if s.Static {
		return "servers.yaml"
	}
	if s.Chosen != "" {
		return "introducer:" + s.Chosen
	}
	return "introducer"
}

// Node returns the node state the broker is running on: the last one that
// loaded without error.
func (b *Broker) Node() *config.Node {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.node
}

// Identity returns the node's persistent identity (private/node.pem), or
// nil for a node built without one. It is never used for storage servers.
func (b *Broker) Identity() *tubtls.Identity { return b.Node().Identity }

// Reload re-reads servers.yaml and applies the difference. On error the
// running map stays in force and the error names the file, line and field.
//
// The file is read without holding the lock that Node, Announce and the
// status need, and through the config package's checks (a regular file, at
// most config.MaxFileSize bytes), so a FIFO or a device put in its place
// fails at once and never holds up Close.
func (b *Broker) Reload() error {
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	node := b.Node()
	if node.Dir == "" {
		return errors.New("tubfarm: node has no directory to reload from")
	}
	servers, err := config.LoadServers(config.ServersPath(node.Dir), node.Config)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.applyLocked(b.node.WithServers(servers))
}

func (b *Broker) applyLocked(next *config.Node) error {
	added, removed, changed := next.Map.Diff(b.node.Map)
	if err := b.ab.Apply(specs(next)); err != nil {
		return err
	}
	b.cn.forget(removed)
	warnRevealing(b.log, next, append(added, changed...))
	warnNURLs(b.log, next, append(added, changed...))
	b.node = next
	return nil
}

// Announce delivers an announcement received from the introducer with the
// given petname, for programs that bring their own: it goes through the
// same rules as those the broker receives itself (signature, duplicate,
// seqnum per introducer and across introducers, limits; see package
// introducer), is written to that introducer's cache file atomically, and
// is merged before Announce returns. A duplicate is not an error; any
// other refusal is.
func (b *Broker) Announce(petname string, ann config.Signed) error {
	return b.disc.announce(petname, ann)
}

// Introducers returns a snapshot of every introducer, sorted by petname.
func (b *Broker) Introducers() []messages.IntroducerStatus { return b.disc.statuses() }

// IntroducerStatuses is Introducers, for the status package.
func (b *Broker) IntroducerStatuses() []messages.IntroducerStatus { return b.disc.statuses() }

// AnnouncedBy returns, for every server of the map that introducers
// announced, the petnames of those introducers.
func (b *Broker) AnnouncedBy() map[string][]string {
	out := map[string][]string{}
	for e := range b.Node().Map.All() {
		if len(e.Source.Introducers) > 0 {
			out[e.ID] = e.Source.Introducers
		}
	}
	return out
}

// WhenIntroducersAnswered returns once every introducer has answered a
// subscription at least once (or refused the version check), or with
// ctx's error; the servers each announced until then are in the map (see
// Servers). With no introducers it returns at once.
func (b *Broker) WhenIntroducersAnswered(ctx context.Context) error { return b.disc.whenAnswered(ctx) }

// SubscribeIntroducers returns every state change of the introducers'
// connections from now on (ServerID is the petname), and a function to
// stop; like Subscribe, events are dropped rather than delaying anything.
// With discovery disabled the channel is closed at once.
func (b *Broker) SubscribeIntroducers() (<-chan messages.StateChanged, func()) {
	if b.disc.ab == nil {
		ch := make(chan messages.StateChanged)
		close(ch)
		return ch, func() {}
	}
	return b.disc.ab.Subscribe()
}

// WhenIntroducers returns once cond holds for the introducers' statuses
// (see Introducers), or with ctx's error. cond is checked at once and again
// after every introducer state change, every announce_v2 call and every
// merge of announcements into the map (so it may also look at Servers); it
// must not block.
func (b *Broker) WhenIntroducers(ctx context.Context, cond func([]messages.IntroducerStatus) bool) error {
	return b.disc.wait(ctx, cond)
}

// TryNowIntroducer cuts introducer petname's reconnection wait short.
func (b *Broker) TryNowIntroducer(petname string) error {
	if b.disc.ab == nil {
		return errors.New("tubfarm: introducer discovery is disabled")
	}
	return b.disc.ab.TryNow(petname)
}

// Servers returns a handle for every server in the map, sorted by ID.
func (b *Broker) Servers() []*Server {
	node := b.Node()
	ids := node.Map.IDs()
	sort.Strings(ids)
	out := make([]*Server, 0, len(ids))
	for _, id := range ids {
		out = append(out, &Server{b: b, id: id})
	}
	return out
}

// Server returns the handle of server id, if the map has it.
func (b *Broker) Server(id string) (*Server, bool) {
	if _, ok := b.Node().Map.Get(id); !ok {
		return nil, false
	}
	return &Server{b: b, id: id}, true
}

// Statuses returns a status snapshot of every server, sorted by ID.
func (b *Broker) Statuses() []actors.Status { return b.ab.Servers() }

// WhenConnected returns once at least n servers are connected, or with
// ctx's error.
func (b *Broker) WhenConnected(ctx context.Context, n int) error {
	return b.ab.WhenConnected(ctx, n)
}

// Subscribe returns every state change from now on, and a function to stop.
// Events are dropped rather than delaying the broker if the channel is full.
func (b *Broker) Subscribe() (<-chan messages.StateChanged, func()) { return b.ab.Subscribe() }

// TryNow cuts server id's reconnection wait short (Foolscap's reset()).
func (b *Broker) TryNow(id string) error { return b.ab.TryNow(id) }

// TryNowAll cuts every server's reconnection wait short.
func (b *Broker) TryNowAll() error { return b.ab.TryNowAll() }

// Close stops watching files, closes every connection, stops every actor and
// waits for all goroutines the broker started. It is idempotent.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		if b.watchStop != nil {
			close(b.watchStop)
			<-b.watchDone
		}
		if b.disc != nil {
			b.disc.close() // before the servers: its last merge applies to them
		}
		b.ab.Close()
		b.tr.Close()
	})
	return nil
}

// A Server is a handle on one storage server of the map, in the manner of
// Tahoe-LAFS's IServer. It hides the actor and the identity behind it; its
// methods read the current state each time.
type Server struct {
	b  *Broker
	id string
}

// ID returns the server id (its "v0-..." key, or the servers.yaml name).
func (s *Server) ID() string { return s.id }

// Entry returns the server's current merged map entry.
func (s *Server) Entry() (config.Entry, bool) { return s.b.Node().Map.Get(s.id) }

// Nickname returns the nickname from the announcement or servers.yaml.
func (s *Server) Nickname() string {
	e, _ := s.Entry()
	return e.Nickname
}

// Announcement returns the announcement (or the servers.yaml ann) in force.
func (s *Server) Announcement() config.Announcement {
	e, _ := s.Entry()
	return e.Announcement
}

// Status returns a snapshot of the server's connection status.
//
// A server no longer in the map (removed from servers.yaml, say) has
// Removed set and State Stopped, its summary "removed": a handle kept
// after the removal does not look as if it were about to connect.
func (s *Server) Status() actors.Status {
	_, inMap := s.b.Node().Map.Get(s.id)
	st, ok := s.b.ab.Server(s.id)
	switch {
	case inMap && ok:
		return st
	case inMap: // between two children, during a restart of the broker actor
		return actors.Status{ID: s.id, State: actors.Idle, Summary: "unstarted"}
	}
	// Removed: while the reload is being applied the broker may still list
	// it, and its last snapshot keeps the history (last connection,
	// failure, version).
	st.ID, st.State, st.Removed, st.Summary = s.id, actors.Stopped, true, "removed"
	st.Connected, st.LastReceived = false, time.Time{}
	return st
}

// Connected reports whether the server has a live connection.
func (s *Server) Connected() bool { return s.Status().Connected }

// Call invokes method on the server's storage reference with positional
// arguments. Byte strings are []byte, text is string; see package foolscap
// for the mapping of every Python type.
func (s *Server) Call(ctx context.Context, method string, args ...any) (any, error) {
	return s.b.ab.Call(ctx, s.id, method, args, nil)
}

// CallKw invokes method with positional and keyword arguments.
func (s *Server) CallKw(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	return s.b.ab.Call(ctx, s.id, method, args, kwargs)
}

// Storage returns the typed storage API of the server, whichever protocol
// reaches it (see Status().Protocol). Each call goes over the live session
// of the moment; a call while the server is not connected fails with
// actors.NotConnectedError. Bucket writers and readers belong to the
// session that made them and fail once it ends.
func (s *Server) Storage() storage.Server { return &serverStorage{s: s} }

// TryNow cuts this server's reconnection wait short.
func (s *Server) TryNow() error { return s.b.ab.TryNow(s.id) }

// Subscribe returns this server's state changes from now on, and a function
// that ends the subscription and closes the channel (Tahoe's
// on_status_changed). Like Broker.Subscribe, events are dropped rather than
// delaying the broker if the reader falls behind. The channel is also
// closed when the broker closes.
func (s *Server) Subscribe() (<-chan messages.StateChanged, func()) {
	all, cancelAll := s.b.ab.Subscribe()
	out := make(chan messages.StateChanged, cap(all))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		for {
			select {
			case ev, ok := <-all:
				if !ok {
					return
				}
				if ev.ServerID != s.id {
					continue
				}
				select {
				case out <- ev:
				default: // the reader is behind: drop, as the broker does
				}
			case <-stop:
				return
			}
		}
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() {
			close(stop)
			cancelAll()
			<-done
		})
	}
}
