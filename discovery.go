package tubfarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/introducer"
	"github.com/tubfarm/tubfarm/messages"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// IntroducerOptions configures discovery through the node's introducers
// (docs/introducers.md). The zero value subscribes to every introducer,
// each connection attempt with a fresh identity.
type IntroducerOptions struct {
	// Disabled keeps the broker from connecting to introducers. Their
	// caches are still read at start, and Announce still works.
	Disabled bool

	// UseNodeIdentity presents the node's persistent identity
	// (private/node.pem) to every introducer, as Tahoe-LAFS does, instead
	// of a fresh ephemeral identity per attempt. Introducers can then link
	// the node's subscriptions to each other.
	UseNodeIdentity bool

	// Nickname is sent in subscriber_info. It is "" by default, since a
	// nickname would link the node's subscriptions.
	Nickname string

	// Limits bound what each introducer may make the broker hold.
	Limits introducer.Limits

	// CacheWriteInterval is the shortest time between two writes of one
	// introducer's cache; changes in between are written together, and
	// Close writes what is left. If zero, DefaultCacheWriteInterval.
	CacheWriteInterval time.Duration
}

// DefaultCacheWriteInterval is IntroducerOptions.CacheWriteInterval's
// default.
const DefaultCacheWriteInterval = time.Second

// IntroducerKind is the actors.Kind of the introducer children: their
// metrics are tubfarm_introducers{state} and tubfarm_introducer_… .
var IntroducerKind = actors.Kind{Name: "introducer", Plural: "introducers", Subsystem: "introducer"}

// subscriberVersion is the my-version sent in subscriber_info.
const subscriberVersion = "tubfarm"

// discovery runs one supervised child per introducer, in an actors.Broker
// of its own with IntroducerKind (the same lifecycle as storage servers:
// own connection, backoff, TryNow, state, status, metrics), keeps each
// introducer's
// introducer.Table, and folds what they accept into the broker's node:
// merged and applied at once, written to the caches at most once per
// CacheWriteInterval.
type discovery struct {
	b    *Broker
	opts IntroducerOptions
	log  *slog.Logger
	ab   *actors.Broker // nil when Disabled
	seq  *introducer.Seqnums

	intros map[string]*intro // by petname; fixed at start
	m      *discoveryMetrics

	notify chan struct{} // cap 1: something was accepted
	stop   chan struct{}
	done   chan struct{}

	mu      sync.Mutex    // guards changed
	changed chan struct{} // closed and replaced when an introducer answers
}

// intro is what discovery keeps about one introducer.
type intro struct {
	cfg   config.Introducer
	path  string // cache file; "" for a node without a directory
	table *introducer.Table

	// unverified holds the entries of a cache Tahoe wrote (no signatures):
	// used for the map until the introducer announces the same server,
	// never written back.
	unverified []config.CacheEntry

	writeMu sync.Mutex // serializes cache writes

	mu           sync.Mutex // guards the fields below
	mergeDirty   bool
	cacheDirty   bool
	lastWrite    time.Time
	answered     bool // subscribe_v2 answered (or version refused) at least once
	subscribed   bool // on the current connection
	version      string
	err          error
	lastAnnounce time.Time
}

func newDiscovery(b *Broker, node *config.Node, opts Options, aopts []actors.Option) (*discovery, error) {
	io := opts.Introducers
	if io.CacheWriteInterval <= 0 {
		io.CacheWriteInterval = DefaultCacheWriteInterval
	}
	d := &discovery{
		b: b, opts: io, log: b.log, seq: introducer.NewSeqnums(), intros: map[string]*intro{},
		notify: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		changed: make(chan struct{}),
	}
	for _, in := range node.Introducers { // sorted by petname: seeding order is stable
		it := &intro{cfg: in, table: introducer.NewTable(io.Limits, d.seq)}
		if node.Dir != "" {
			it.path = config.CachePath(node.Dir, in.Petname)
		}
		if c := node.Caches[in.Petname]; c != nil {
			it.table.Seed(c.Entries)
			for _, e := range c.Entries {
				if !e.Verified() {
					it.unverified = append(it.unverified, e)
				}
			}
		}
		d.intros[in.Petname] = it
	}
	d.m = newDiscoveryMetrics(d)
	if err := d.m.register(opts.Registerer); err != nil {
		return nil, err
	}
	if !io.Disabled && len(d.intros) > 0 {
		ac := actors.Config{
			Kind:            IntroducerKind,
			Connector:       introConnector{d},
			Backoff:         opts.Backoff,
			ConnectTimeout:  opts.ConnectTimeout,
			Decorrelate:     opts.Decorrelate,
			IsolatedBackoff: true,
		}
		aopts = slices.Clone(aopts)
		if opts.Registerer != nil {
			aopts = append(aopts, actors.WithRegisterer(opts.Registerer))
		}
		if io.UseNodeIdentity {
			id := node.Identity
			if id == nil {
				d.m.unregister()
				return nil, errors.New("tubfarm: IntroducerOptions.UseNodeIdentity needs the node's identity (private/node.pem; use Open)")
			}
			ac.Identity = actors.PerServer
			aopts = append(aopts, actors.WithIdentitySource(func() (*tubtls.Identity, error) { return id, nil }))
		}
		ab, err := actors.New(ac, aopts...)
		if err != nil {
			d.m.unregister()
			return nil, err
		}
		d.ab = ab
		var specs []messages.ServerSpec
		for _, pet := range slices.Sorted(maps.Keys(d.intros)) {
			in := d.intros[pet].cfg
			pol := node.Config.Policy
			specs = append(specs, messages.ServerSpec{
				ID: pet, Nickname: pet, FURL: in.FURL, Source: in.Path,
				RevealsIP: pol.RevealsIP(), Policy: pol,
			})
		}
		if err := ab.Apply(specs); err != nil {
			ab.Close()
			d.m.unregister()
			return nil, err
		}
	}
	go d.run()
	return d, nil
}

// close stops the introducer children, then merges and writes what is
// left.
func (d *discovery) close() {
	if d.ab != nil {
		d.ab.Close()
	}
	close(d.stop)
	<-d.done
	d.m.unregister()
}

// entries returns what introducer in contributes to the map: its accepted
// announcements, and the unverified cache entries of servers it has not
// announced since.
func (in *intro) entries() []config.CacheEntry {
	es := in.table.Entries()
	if len(in.unverified) == 0 {
		return es
	}
	have := make(map[string]bool, len(es))
	for _, e := range es {
		have[e.Key] = true
	}
	for _, e := range in.unverified {
		if !have[e.Key] {
			es = append(es, e)
		}
	}
	return es
}

// accepted records a batch accepted from in and wakes the merge loop.
func (d *discovery) accepted(in *intro) {
	in.mu.Lock()
	in.mergeDirty, in.cacheDirty = true, true
	in.mu.Unlock()
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

// run merges accepted announcements into the broker's node as they come
// (a burst is merged once per pass, however many calls it took) and
// writes each dirty cache when its interval allows; on stop it merges and
// writes what is left.
func (d *discovery) run() {
	defer close(d.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		final := false
		select {
		case <-d.notify:
			d.merge()
		case <-timer.C:
		case <-d.stop:
			d.merge()
			final = true
		}
		next := d.writeCaches(final)
		if final {
			return
		}
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
	}
}

// merge applies the dirty introducers' entries to the broker's node.
func (d *discovery) merge() {
	changed := map[string][]config.CacheEntry{}
	for pet, in := range d.intros {
		in.mu.Lock()
		dirty := in.mergeDirty
		in.mergeDirty = false
		in.mu.Unlock()
		if dirty {
			changed[pet] = in.entries()
		}
	}
	if len(changed) == 0 {
		return
	}
	b := d.b
	b.mu.Lock()
	err := b.applyLocked(b.node.WithEntries(changed))
	b.mu.Unlock()
	if err != nil && !errors.Is(err, actors.ErrClosed) {
		d.log.Error("tubfarm: applying announcements", slog.Any("error", err))
	}
	d.bump() // the map changed: waiters check again
}

// writeCaches writes every dirty cache whose interval has passed (all of
// them if final) and returns when the next one is due (zero if none).
func (d *discovery) writeCaches(final bool) time.Time {
	var next time.Time
	now := time.Now()
	for _, in := range d.intros {
		in.mu.Lock()
		dirty, due := in.cacheDirty, in.lastWrite.Add(d.opts.CacheWriteInterval)
		in.mu.Unlock()
		if !dirty {
			continue
		}
		if !final && now.Before(due) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		if err := d.write(in); err != nil {
			d.log.Error("tubfarm: writing introducer cache", slog.String("introducer", in.cfg.Petname), slog.Any("error", err))
		}
	}
	return next
}

// write writes in's verified entries to its cache file, atomically.
func (d *discovery) write(in *intro) error {
	in.writeMu.Lock()
	defer in.writeMu.Unlock()
	in.mu.Lock()
	in.cacheDirty = false
	in.lastWrite = time.Now()
	in.mu.Unlock()
	if in.path == "" {
		return nil
	}
	start := time.Now()
	n, err := config.WriteVerifiedCache(in.path, in.table.Entries())
	if err != nil {
		return err
	}
	d.m.cacheWrites.Inc()
	d.m.cacheBytes.Add(float64(n))
	d.m.cacheSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// answered records the outcome of a subscription attempt on in.
func (d *discovery) answered(in *intro, subscribed bool, version string, err error) {
	d.merge() // what it announced is in the map before anyone hears it answered
	in.mu.Lock()
	in.answered, in.subscribed, in.version, in.err = true, subscribed, version, err
	in.mu.Unlock()
	d.bump()
}

// bump wakes the waiters of wait.
func (d *discovery) bump() {
	d.mu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

// introConnector is the actors.Connector of the introducer children: the
// storage connector's dial, then the version check and subscribe_v2.
type introConnector struct{ d *discovery }

func (c introConnector) Connect(ctx context.Context, spec messages.ServerSpec, id *actors.Identity, report func(hint, status string)) (actors.Session, error) {
	d := c.d
	in := d.intros[spec.ID]
	if in == nil {
		return nil, &actors.ConnectError{Reason: actors.ReasonOther, Permanent: true, Err: fmt.Errorf("tubfarm: unknown introducer %q", spec.ID)}
	}
	in.mu.Lock()
	in.subscribed = false
	in.mu.Unlock()
	dspec := spec
	dspec.ID = "introducer:" + spec.ID // the connector's per-peer state is keyed by ID; keep it apart from servers'
	s, err := d.b.cn.dial(ctx, dspec, id, report)
	if err != nil {
		return nil, err
	}
	sub := &introducer.Subscriber{
		Table:  in.table,
		Logger: d.log.With(slog.String("introducer", spec.ID)),
		OnCall: func() {
			in.mu.Lock()
			in.lastAnnounce = time.Now()
			in.mu.Unlock()
		},
		OnAccepted: func([]introducer.Entry) { d.accepted(in) },
		OnDone:     d.bump,
	}
	info := introducer.SubscriberInfo(d.opts.Nickname, subscriberVersion)
	version, err := introducer.Subscribe(ctx, s.ref, sub, info)
	vs := versionString(version)
	switch {
	case errors.Is(err, introducer.ErrNotV2):
		// Tahoe keeps such a connection and neither publishes nor
		// subscribes; so does the broker, and says why in the status.
		d.log.Warn("tubfarm: introducer is not v2; connected but not subscribed", slog.String("introducer", spec.ID), slog.Any("error", err))
		d.answered(in, false, vs, err)
	case err != nil:
		s.Close()
		return nil, err
	default:
		d.answered(in, true, vs, nil)
	}
	return &introSession{session: s, version: version}, nil
}

// introSession is an introducer connection. get_version was asked before
// subscribing; the child's own get_version gets that answer.
type introSession struct {
	*session
	version any
}

func (s *introSession) Call(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	if method == "get_version" && len(args) == 0 && len(kwargs) == 0 {
		return s.version, nil
	}
	return s.session.Call(ctx, method, args, kwargs)
}

func versionString(v any) string {
	d, ok := v.(interface{ GetString(string) (any, bool) })
	if !ok {
		return ""
	}
	x, _ := d.GetString("application-version")
	switch s := x.(type) {
	case []byte:
		return string(s)
	case string:
		return s
	}
	return ""
}

// announce is Broker.Announce: one announcement through introducer pet's
// table, written to its cache and applied before it returns.
func (d *discovery) announce(pet string, ann config.Signed) error {
	in := d.intros[pet]
	if in == nil {
		return fmt.Errorf("tubfarm: announcement from unknown introducer %q", pet)
	}
	r, _, err := in.table.Offer(ann)
	switch r {
	case introducer.Accepted:
	case introducer.Duplicate:
		return nil // Tahoe ignores it
	case introducer.StaleSeqnum:
		return fmt.Errorf("tubfarm: announcement from %q not newer than the one held (replay?): %w", pet, err)
	default:
		return fmt.Errorf("tubfarm: announcement from %q refused (%s): %w", pet, r, err)
	}
	if err := d.write(in); err != nil {
		return err
	}
	in.mu.Lock()
	in.mergeDirty = false
	in.mu.Unlock()
	b := d.b
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.applyLocked(b.node.WithEntries(map[string][]config.CacheEntry{pet: in.entries()}))
}

// statuses returns a snapshot of every introducer, sorted by petname.
func (d *discovery) statuses() []messages.IntroducerStatus {
	var conn map[string]actors.Status
	if d.ab != nil {
		conn = map[string]actors.Status{}
		for _, st := range d.ab.Servers() {
			conn[st.ID] = st
		}
	}
	out := make([]messages.IntroducerStatus, 0, len(d.intros))
	for _, pet := range slices.Sorted(maps.Keys(d.intros)) {
		in := d.intros[pet]
		st := messages.IntroducerStatus{Petname: pet, Servers: in.table.Len(), Announcements: map[string]uint64{}}
		for r, n := range in.table.Counts() {
			st.Announcements[r.String()] = n
		}
		if cs, ok := conn[pet]; ok {
			st.State, st.Since, st.Connected, st.Summary = cs.State, cs.Since, cs.Connected, cs.Summary
			st.LastReceived, st.ClientTubID = cs.LastReceived, cs.TubID
		} else {
			st.Summary = "not connecting (discovery disabled)"
		}
		in.mu.Lock()
		st.Subscribed = st.Connected && in.subscribed
		st.Version, st.LastAnnouncement = in.version, in.lastAnnounce
		if in.err != nil {
			st.Error = in.err.Error()
		}
		in.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// wait returns once cond holds for the introducers' statuses, checked
// again at every state change, after every announce_v2 call and after
// every merge.
func (d *discovery) wait(ctx context.Context, cond func([]messages.IntroducerStatus) bool) error {
	var events <-chan messages.StateChanged
	if d.ab != nil {
		ch, cancel := d.ab.Subscribe()
		defer cancel()
		events = ch
	}
	for {
		d.mu.Lock()
		changed := d.changed
		d.mu.Unlock()
		if cond(d.statuses()) {
			return nil
		}
		select {
		case <-changed:
		case _, ok := <-events:
			if !ok {
				events = nil
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-d.done:
			return actors.ErrClosed
		}
	}
}

// whenAnswered returns once every introducer has answered a subscription
// (or refused the version check) at least once; what each announced before
// answering is then in the broker's map.
func (d *discovery) whenAnswered(ctx context.Context) error {
	if d.ab == nil && len(d.intros) > 0 {
		return errors.New("tubfarm: introducer discovery is disabled")
	}
	return d.wait(ctx, func([]messages.IntroducerStatus) bool {
		for _, in := range d.intros {
			in.mu.Lock()
			a := in.answered
			in.mu.Unlock()
			if !a {
				return false
			}
		}
		return true
	})
}

// discoveryMetrics are the introducer metrics of docs/metrics.md. Labels
// never carry a petname, FURL or server id.
type discoveryMetrics struct {
	reg          prometheus.Registerer
	cacheWrites  prometheus.Counter
	cacheBytes   prometheus.Counter
	cacheSeconds prometheus.Histogram
	collector    *discoveryCollector
}

func newDiscoveryMetrics(d *discovery) *discoveryMetrics {
	return &discoveryMetrics{
		cacheWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tubfarm_introducer_cache_writes_total", Help: "Introducer cache files written."}),
		cacheBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tubfarm_introducer_cache_write_bytes_total", Help: "Bytes written to introducer cache files."}),
		cacheSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tubfarm_introducer_cache_write_seconds", Help: "Time to write one introducer cache file (encode, write, sync, rename).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)}),
		collector: &discoveryCollector{d: d},
	}
}

func (m *discoveryMetrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{m.cacheWrites, m.cacheBytes, m.cacheSeconds, m.collector} {
		if err := reg.Register(c); err != nil {
			for _, r := range done {
				reg.Unregister(r)
			}
			return err
		}
		done = append(done, c)
	}
	m.reg = reg
	return nil
}

func (m *discoveryMetrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range []prometheus.Collector{m.cacheWrites, m.cacheBytes, m.cacheSeconds, m.collector} {
		m.reg.Unregister(c)
	}
	m.reg = nil
}

// discoveryCollector reads the tables' counts at scrape time.
type discoveryCollector struct{ d *discovery }

var descAnnouncements = prometheus.NewDesc("tubfarm_introducer_announcements_total",
	"Announcements received from introducers, by result.", []string{"result"}, nil)

func (c *discoveryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descAnnouncements }

func (c *discoveryCollector) Collect(ch chan<- prometheus.Metric) {
	results := map[introducer.Result]uint64{}
	for _, in := range c.d.intros {
		for r, n := range in.table.Counts() {
			results[r] += n
		}
	}
	for _, r := range introducer.Results() {
		ch <- prometheus.MustNewConstMetric(descAnnouncements, prometheus.CounterValue, float64(results[r]), r.String())
	}
}
