package actors

import (
	"cmp"
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tubfarm/tubfarm/messages"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// DefaultConnectTimeout bounds one connection attempt (all hints, the TLS
// handshake, negotiation, getReference and get_version) when
// Config.ConnectTimeout is zero. It matches Foolscap's
// TubConnector.CONNECTION_TIMEOUT, long enough for Tor.
const DefaultConnectTimeout = 2 * time.Minute

// DefaultSubscriberBuffer is the number of events a subscriber may fall
// behind by before events are dropped, when Config.SubscriberBuffer is zero.
const DefaultSubscriberBuffer = 64

// Config configures a [Broker]. Its zero value is usable except for
// Connector, which is required. A Config must not be modified after it has
// been passed to New.
type Config struct {
	// Connector makes the connection attempts. Required.
	Connector Connector

	// Kind names the children in metrics and logs. The zero value is
	// ServerKind.
	Kind Kind

	// Identity says how often a server's identity is renewed. The zero
	// value is PerAttempt.
	Identity IdentityPolicy

	// Backoff spaces reconnection attempts after failures and lost
	// sessions. If zero, DefaultBackoff is used.
	Backoff Backoff

	// RestartBackoff spaces restarts of a server's child actor after a
	// panic. If zero, DefaultRestartBackoff is used.
	RestartBackoff Backoff

	// ConnectTimeout bounds one connection attempt. If zero,
	// DefaultConnectTimeout is used.
	ConnectTimeout time.Duration

	// IsolatedBackoff keeps each server's backoff to itself. By default,
	// as in Tahoe-LAFS's _trigger_connections, when one server connects
	// every server waiting out a backoff forgets its failure count and has
	// its retry moved to a random point (one draw per wait) within
	// Backoff.BaseDelay (within Decorrelate when that is set) if that is
	// sooner; a restart delay after a panic is never cut. A client coming
	// back online thus reconnects to the whole grid within about a second,
	// spread out rather than in one wave. See docs/state-machine.md.
	IsolatedBackoff bool

	// SubscriberBuffer is the capacity of each Subscribe channel. If zero,
	// DefaultSubscriberBuffer is used.
	SubscriberBuffer int

	// Decorrelate, if positive, delays each server's first connection, and
	// adds to each reconnection delay, an independent random delay drawn
	// uniformly from [0, Decorrelate). Colluding servers that compare when
	// clients connect then cannot match one client's connections by their
	// timing (the correlation left open by Tahoe-LAFS ticket #2759). When
	// it is on, a server connecting moves the others' waits within this
	// window rather than within Backoff.BaseDelay (see IsolatedBackoff).
	Decorrelate time.Duration
}

// An Option sets one of the broker's injectable dependencies.
type Option func(*options)

type options struct {
	logger      *slog.Logger
	registerer  prometheus.Registerer
	clock       Clock
	rand        func() float64
	newIdentity func() (*tubtls.Identity, error)
}

// WithLogger sets the logger for the broker and, under the attribute
// lib=protoactor, for the actor system. The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer registers the broker's metrics with reg (see
// docs/metrics.md). By default the metrics are kept but not registered. Use
// prometheus.WrapRegistererWith to register several brokers with one
// registry. Close unregisters them.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(o *options) { o.registerer = reg }
}

// WithClock sets the clock used for status times and backoff timers. The
// default is the real clock.
func WithClock(c Clock) Option { return func(o *options) { o.clock = c } }

// WithIdentitySource replaces the maker of ephemeral identities (by default
// tubtls.NewEphemeral). Benchmarks use it to compare per-server identities
// with one identity shared by every server; a program that wants
// unlinkability has no reason to.
func WithIdentitySource(f func() (*tubtls.Identity, error)) Option {
	return func(o *options) { o.newIdentity = f }
}

// WithRand sets the source of the random numbers in [0, 1) used for backoff
// jitter; the broker serialises calls to it. The default is math/rand/v2's
// Float64. Tests pass a constant 0.5 to get the nominal delays.
func WithRand(f func() float64) Option { return func(o *options) { o.rand = f } }

// shared is what every actor of one broker reads. Its fields are set by New
// and not modified afterwards, except those that are safe for concurrent use.
type shared struct {
	cfg         Config
	kind        Kind
	m           *metrics
	hub         *hub
	log         *slog.Logger
	clock       Clock
	newIdentity func() (*tubtls.Identity, error)

	randMu  sync.Mutex
	randSrc func() float64

	wg sync.WaitGroup // goroutines started by server actors

	// gens numbers attempts and timers across every slot of the broker.
	// A replacement child (after a broker restart, or a changed connection) has
	// the same PID as its predecessor, so a late message from the old
	// child's goroutines reaches the new one; numbers unique across
	// slots make the generation check reject it.
	gens atomic.Uint64
}

// nextGen returns a generation number never used before in this broker.
func (sh *shared) nextGen() uint64 { return sh.gens.Add(1) }

func (sh *shared) rand() float64 {
	sh.randMu.Lock()
	defer sh.randMu.Unlock()
	return sh.randSrc()
}

// A Broker keeps one connection, with its own ephemeral identity, to each
// server of the set given to Apply, reconnecting with backoff. It is the
// embedding surface of the supervised actor tree described in the package
// documentation. Its methods are safe for concurrent use.
type Broker struct {
	sh  *shared
	sys *actor.ActorSystem
	pid *actor.PID

	// desired is the spec set of the last Apply. Only the broker actor
	// touches it; it lives here rather than in the actor so that it
	// survives a restart of the broker actor.
	desired map[string]messages.ServerSpec

	mu    sync.RWMutex     // guards slots
	slots map[string]*slot // the status store, written by the broker actor

	closing   chan struct{} // closed when Close starts
	stopped   chan struct{} // closed when the broker actor has stopped
	stopOnce  sync.Once
	closeOnce sync.Once
}

// New starts a broker with no servers. Call Apply to give it some, and Close
// to release it.
func New(cfg Config, opts ...Option) (*Broker, error) {
	if cfg.Connector == nil {
		return nil, ErrNoConnector
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.RestartBackoff == (Backoff{}) {
		cfg.RestartBackoff = DefaultRestartBackoff
	}
	if err := cfg.Backoff.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.RestartBackoff.Validate(); err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.SubscriberBuffer <= 0 {
		cfg.SubscriberBuffer = DefaultSubscriberBuffer
	}
	if cfg.Kind == (Kind{}) {
		cfg.Kind = ServerKind
	}
	if err := cfg.Kind.validate(); err != nil {
		return nil, err
	}
	o := options{logger: slog.Default(), clock: realClock{}, rand: rand.Float64, newIdentity: tubtls.NewEphemeral}
	for _, opt := range opts {
		opt(&o)
	}

	m := newMetrics(cfg.Kind)
	if err := m.register(o.registerer); err != nil {
		return nil, err
	}
	sh := &shared{
		cfg: cfg, kind: cfg.Kind, m: m, hub: newHub(m), log: o.logger, clock: o.clock,
		newIdentity: o.newIdentity, randSrc: o.rand,
	}
	b := &Broker{
		sh:      sh,
		desired: make(map[string]messages.ServerSpec),
		slots:   make(map[string]*slot),
		closing: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	b.sys = actor.NewActorSystem(actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
		return o.logger.With(slog.String("lib", "protoactor"), slog.String("system", s.ID))
	}))
	props := actor.PropsFromProducer(func() actor.Actor { return &brokerActor{b: b} },
		actor.WithGuardian(&brokerGuardian{
			inner: actor.NewOneForOneStrategy(maxBrokerRestarts, brokerRestartWindow, actor.DefaultDecider),
			m:     m, log: o.logger,
		}),
		actor.WithReceiverMiddleware(logBrokerPanics(o.logger)))
	pid, err := b.sys.Root.SpawnNamed(props, "broker")
	if err != nil { // cannot happen in a fresh system
		b.sys.Shutdown()
		m.unregister()
		return nil, err
	}
	b.pid = pid
	return b, nil
}

// Apply makes specs the broker's server set and returns once the broker has
// acted on the difference with the previous set:
//
//   - a server whose spec is the same connection
//     ([messages.ServerSpec.SameConnection]: same FURL and policy) keeps its
//     child actor, identity and session (changes to its other fields only
//     update its status);
//   - a server whose connection changed is stopped, its session closed, and a new
//     child with a new identity started once the old one has terminated;
//   - a server no longer listed is stopped and its session closed; it is
//     gone from Servers and Server when Apply returns;
//   - a new server gets a child that starts connecting at once.
//
// Every spec must have a non-empty ID, unique within specs; otherwise Apply
// returns a *SpecError and changes nothing.
func (b *Broker) Apply(specs []messages.ServerSpec) error {
	set := make(map[string]messages.ServerSpec, len(specs))
	for i, s := range specs {
		if s.ID == "" {
			return &SpecError{Index: i, ID: s.ID, Msg: "empty ID"}
		}
		if _, dup := set[s.ID]; dup {
			return &SpecError{Index: i, ID: s.ID, Msg: "duplicate ID"}
		}
		set[s.ID] = s.Clone()
	}
	req := &applyRequest{specs: set, done: make(chan struct{})}
	if err := b.send(req); err != nil {
		return err
	}
	select {
	case <-req.done:
		b.sh.m.revealingIP.Set(float64(countRevealing(specs)))
		return nil
	case <-b.stopped:
		return ErrClosed
	}
}

// Clock returns the clock the broker was given with [WithClock], or the
// real clock, so that a Connector's sessions can time their own checks by
// it.
func (b *Broker) Clock() Clock { return b.sh.clock }

// Servers returns a status snapshot of every server, sorted by ID. A server
// being replaced (its connection changed) shows its old child's status until that
// child has terminated.
func (b *Broker) Servers() []Status {
	now := b.sh.clock.Now()
	b.mu.RLock()
	out := make([]Status, 0, len(b.slots))
	for _, s := range b.slots {
		out = append(out, s.snapshot(now))
	}
	b.mu.RUnlock()
	slices.SortFunc(out, func(x, y Status) int { return cmp.Compare(x.ID, y.ID) })
	return out
}

// Server returns the status snapshot of one server.
func (b *Broker) Server(id string) (Status, bool) {
	s := b.slot(id)
	if s == nil {
		return Status{}, false
	}
	return s.snapshot(b.sh.clock.Now()), true
}

// Call invokes method on server id's root object over its live session, in
// the caller's goroutine; ctx bounds the call. It returns an
// *UnknownServerError or a *NotConnectedError if there is no such server or
// no live session.
func (b *Broker) Call(ctx context.Context, id, method string, args []any, kwargs map[string]any) (any, error) {
	s, err := b.Session(id)
	if err != nil {
		return nil, err
	}
	return s.Call(ctx, method, args, kwargs)
}

// Session returns server id's live session, for callers that need more
// than Call (the typed storage API).
func (b *Broker) Session(id string) (Session, error) {
	s := b.slot(id)
	if s == nil {
		return nil, &UnknownServerError{ID: id}
	}
	live := s.session.Load()
	if live == nil {
		return nil, &NotConnectedError{ID: id, State: s.status.Load().State}
	}
	return live.s, nil
}

// WhenConnected returns nil as soon as at least n servers are connected,
// ctx.Err() if ctx ends first, or ErrClosed if the broker closes.
func (b *Broker) WhenConnected(ctx context.Context, n int) error {
	for {
		if b.isClosing() {
			return ErrClosed
		}
		changed := b.sh.hub.wait() // before counting, so no change is missed
		if b.connected() >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.stopped:
			return ErrClosed
		}
	}
}

// Subscribe returns a channel of every StateChanged event from now on, and
// a function that cancels the subscription and closes the channel. The
// channel holds Config.SubscriberBuffer events; when it is full, further
// events are dropped (counted in tubfarm_subscriber_events_dropped_total)
// rather than slowing the broker. Close closes every subscription channel.
func (b *Broker) Subscribe() (<-chan messages.StateChanged, func()) {
	return b.sh.hub.subscribe(b.sh.cfg.SubscriberBuffer)
}

// TryNow cuts server id's backoff wait short, like Foolscap's
// Reconnector.reset(): a server waiting to retry forgets its failure count
// and tries at once; one connecting forgets its failure count, so that a
// failure of that attempt waits only the base delay; a connected one is
// not touched.
func (b *Broker) TryNow(id string) error {
	if b.slot(id) == nil {
		if b.isClosing() {
			return ErrClosed
		}
		return &UnknownServerError{ID: id}
	}
	return b.send(&tryNowRequest{id: id})
}

// TryNowAll does what TryNow does, for every server.
func (b *Broker) TryNowAll() error {
	return b.send(&tryNowRequest{all: true})
}

// Close stops every server actor (closing their sessions and cancelling
// their attempts), waits until all of them and every goroutine they started
// have finished, closes the subscription channels, unregisters the metrics
// and shuts the actor system down. It is idempotent and always returns nil.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		close(b.closing)
		select {
		case <-b.stopped: // the broker actor gave up after repeated panics
		default:
			b.sys.Root.Stop(b.pid)
			<-b.stopped
		}
		b.sh.wg.Wait()
		b.sh.hub.close()
		b.sh.m.unregister()
		b.sys.Shutdown()
	})
	return nil
}

func (b *Broker) send(msg any) error {
	if b.isClosing() {
		return ErrClosed
	}
	b.sys.Root.Send(b.pid, msg)
	return nil
}

func (b *Broker) isClosing() bool {
	select {
	case <-b.closing:
		return true
	case <-b.stopped:
		return true
	default:
		return false
	}
}

func (b *Broker) slot(id string) *slot {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.slots[id]
}

func (b *Broker) connected() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	n := 0
	for _, s := range b.slots {
		if s.status.Load().Connected {
			n++
		}
	}
	return n
}
