// Package introducerserver is a Go implementation of the server side of
// Tahoe-LAFS's introducer protocol v2, on tubfarm's Foolscap listener. The
// demo, the tests and the benchmarks run it on loopback.
//
// It behaves as Tahoe 1.20's introducer does (docs/introducers.md): it
// answers get_version with the v2 key, takes signed announcements with
// publish_v2 (or, in-process, [Server.Publish]) under the client's rules
// (one per server key, duplicates ignored, a newer seqnum replaces), and for
// each subscribe_v2 to "storage" makes one announce_v2 call with every
// announcement it holds, waits for its answer, and only then answers the
// subscribe. Later announcements are pushed to every subscriber as
// one-element sets, in order. Unlike Tahoe's, its announcements survive
// [Server.Stop] and [Server.Restart], standing in for publishers that
// reconnect and publish again.
//
// For hostile-introducer tests it can also push arbitrary sets
// ([Server.PushRaw], Options.Initial) and refuse to answer subscribe_v2
// (Options.Stall).
package introducerserver

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/introducer"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// Version is the application-version the server reports.
const Version = "tahoe-lafs/1.20.0"

// Options configures Start.
type Options struct {
	// Initial, if set, replaces the set sent in answer to each
	// subscribe_v2 (hostile tests); otherwise every held announcement is
	// sent.
	Initial func() []any
	// Stall makes subscribe_v2 never answer (until the connection ends),
	// after the initial announce_v2.
	Stall bool
	// Addr is the listening address; default "127.0.0.1:0".
	Addr string
}

type held struct {
	signed config.Signed
	ann    config.Announcement
}

// Server is a running introducer.
type Server struct {
	// FURL is the introducer's FURL.
	FURL string
	Tub  *foolscap.Tub

	opts Options
	obj  *service

	mu      sync.Mutex
	ln      *foolscap.Listener
	addr    string
	anns    map[string]held // by server key (service "storage" only)
	subs    map[*foolscap.RemoteRef]*sender
	clients []string      // client TubIDs seen, in order
	changed chan struct{} // closed and replaced when subs or clients change
	wg      sync.WaitGroup
	closed  bool
}

// Start starts an introducer on loopback.
func Start(ctx context.Context, opts Options) (*Server, error) {
	id, err := tubtls.NewEphemeral()
	if err != nil {
		return nil, err
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	s := &Server{Tub: foolscap.NewTub(id), opts: opts, anns: map[string]held{},
		subs: map[*foolscap.RemoteRef]*sender{}, changed: make(chan struct{})}
	s.obj = &service{s: s}
	ln, err := foolscap.Listen(ctx, "tcp", opts.Addr, s.listenConfig())
	if err != nil {
		return nil, err
	}
	s.ln, s.addr = ln, ln.Addr().String()
	s.Tub.SetLocation("tcp:" + s.addr)
	if s.FURL, err = s.Tub.Register(s.obj, "introducer"); err != nil {
		ln.Close()
		return nil, err
	}
	ln.AddTub(s.Tub)
	return s, nil
}

func (s *Server) listenConfig() foolscap.ListenConfig {
	return foolscap.ListenConfig{OnConnect: func(_ *foolscap.Tub, peer string, _ *foolscap.Conn) {
		s.mu.Lock()
		s.clients = append(s.clients, peer)
		s.notifyLocked()
		s.mu.Unlock()
	}}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Addr returns the listening address (kept across restarts).
func (s *Server) Addr() string { return s.addr }

// Clients returns the client TubIDs that connected, in order.
func (s *Server) Clients() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.clients)
}

// Subscribers returns the number of live storage subscriptions.
func (s *Server) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// Wait returns once cond holds (checked at each change of subscribers or
// clients, and at Close) or ctx ends.
func (s *Server) Wait(ctx context.Context, cond func(s *Server) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Publish verifies and stores a signed announcement under the client's
// rules and pushes it to every subscriber. It returns the rule's result.
func (s *Server) Publish(signed config.Signed) (introducer.Result, error) {
	ann, err := signed.Verify()
	if err != nil {
		return introducer.BadSignature, err
	}
	if ann.ServiceName != introducer.StorageService {
		return introducer.WrongService, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.anns[signed.Key]; ok {
		if old.ann.Equal(ann) {
			return introducer.Duplicate, nil
		}
		if old.ann.HasSeqnum && (!ann.HasSeqnum || ann.Seqnum <= old.ann.Seqnum) {
			return introducer.StaleSeqnum, nil
		}
	}
	s.anns[signed.Key] = held{signed, ann}
	item := foolscap.Tuple{signed.Msg, []byte(signed.Sig), []byte(signed.Key)}
	for _, snd := range s.subs {
		snd.push(foolscap.Set{item})
	}
	return introducer.Accepted, nil
}

// PushRaw sends set as one announce_v2 call to every subscriber, whatever
// it holds.
func (s *Server) PushRaw(set foolscap.Set) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, snd := range s.subs {
		snd.push(set)
	}
}

// Len returns the number of announcements held.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.anns)
}

// Stop closes the listener and every connection, as if the introducer
// process died; held announcements stay (see the package comment).
func (s *Server) Stop() error {
	s.mu.Lock()
	ln := s.ln
	s.ln = nil
	s.mu.Unlock()
	if ln == nil {
		return nil
	}
	return ln.Close()
}

// Restart listens again on the same address with the same identity.
func (s *Server) Restart(ctx context.Context) error {
	ln, err := foolscap.Listen(ctx, "tcp", s.addr, s.listenConfig())
	if err != nil {
		return err
	}
	ln.AddTub(s.Tub)
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	return nil
}

// Close stops the introducer and waits for its goroutines, including the
// push loop of a subscription that was still being set up.
func (s *Server) Close() {
	s.Stop()
	s.mu.Lock()
	s.closed = true
	s.notifyLocked()
	for _, snd := range s.subs {
		snd.stop()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// service is the object the FURL names.
type service struct{ s *Server }

func (*service) InterfaceName() string { return introducer.PublisherInterface }

func (o *service) CallRemote(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	arg := func(i int, name string) any {
		if i < len(args) {
			return args[i]
		}
		return kwargs[name]
	}
	switch method {
	case "get_version":
		return foolscap.Dict{
			{Key: []byte(introducer.ProtocolV2), Value: foolscap.Dict{}},
			{Key: []byte("application-version"), Value: []byte(Version)},
		}, nil
	case "publish_v2":
		t, ok := arg(0, "announcement").(foolscap.Tuple)
		if !ok || len(t) != 3 {
			return nil, violation("announcement must be a (msg, sig, key) tuple")
		}
		msg, _ := t[0].([]byte)
		sig, _ := t[1].([]byte)
		key, _ := t[2].([]byte)
		if _, err := o.s.Publish(config.Signed{Msg: msg, Sig: string(sig), Key: string(key)}); err != nil {
			return nil, err
		}
		return nil, nil
	case "subscribe_v2":
		return nil, o.s.subscribe(ctx, arg(0, "subscriber"), arg(1, "service_name"), arg(2, "subscriber_info"))
	}
	return nil, foolscap.UnknownMethod(introducer.PublisherInterface, method)
}

func (s *Server) subscribe(ctx context.Context, subV, svcV, infoV any) error {
	ref, ok := subV.(*foolscap.RemoteRef)
	if !ok || ref.InterfaceName() != introducer.SubscriberInterface {
		return violation(fmt.Sprintf("subscriber must be a %s reference", introducer.SubscriberInterface))
	}
	svc, ok := svcV.([]byte)
	if !ok {
		return violation("service_name must be bytes")
	}
	info, ok := infoV.(foolscap.Dict)
	if !ok {
		return violation("subscriber_info must be a dict")
	}
	for _, it := range info {
		if _, ok := it.Key.([]byte); !ok {
			return violation("subscriber_info keys must be bytes")
		}
	}
	if len(info) == 0 {
		return &foolscap.RemoteError{Type: "builtins.AssertionError", Value: "", Traceback: "Traceback unavailable\n",
			Parents: []string{"builtins.AssertionError", "builtins.Exception", "builtins.BaseException", "builtins.object"}}
	}
	if string(svc) != introducer.StorageService {
		return nil // nothing to announce for other services
	}
	s.mu.Lock()
	if _, dup := s.subs[ref]; dup || s.closed {
		s.mu.Unlock()
		return nil
	}
	var initial foolscap.Set
	if s.opts.Initial != nil {
		initial = s.opts.Initial()
	} else {
		for _, k := range slices.Sorted(maps.Keys(s.anns)) {
			h := s.anns[k]
			initial = append(initial, foolscap.Tuple{h.signed.Msg, []byte(h.signed.Sig), []byte(h.signed.Key)})
		}
	}
	snd := newSender(s, ref)
	s.subs[ref] = snd
	// Counted now, under mu and before closed is set, so that Close's
	// Wait also waits for a sender not started yet.
	s.wg.Add(1)
	s.notifyLocked()
	s.mu.Unlock()
	if len(initial) > 0 {
		if _, err := ref.Call(ctx, "announce_v2", []any{initial}, nil); err != nil && !errors.Is(err, context.Canceled) {
			// Tahoe logs and carries on.
			_ = err
		}
	}
	if testHookBeforeStart != nil {
		testHookBeforeStart()
	}
	snd.start()
	if s.opts.Stall {
		<-ctx.Done()
	}
	return nil
}

// testHookBeforeStart, if set by a test, runs in subscribe between
// registering a sender and starting it.
var testHookBeforeStart func()

// sender pushes announce_v2 calls to one subscriber in order.
type sender struct {
	s    *Server
	ref  *foolscap.RemoteRef
	mu   sync.Mutex
	q    []foolscap.Set
	wake chan struct{}
	quit chan struct{}
	once sync.Once
}

func newSender(s *Server, ref *foolscap.RemoteRef) *sender {
	return &sender{s: s, ref: ref, wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

func (d *sender) push(set foolscap.Set) {
	d.mu.Lock()
	d.q = append(d.q, set)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *sender) stop() { d.once.Do(func() { close(d.quit) }) }

// start runs the push loop, already counted in d.s.wg by subscribe; it
// ends when the subscriber's connection ends or the server closes.
func (d *sender) start() {
	go func() {
		defer d.s.wg.Done()
		conn := d.ref.Conn()
		defer func() {
			d.s.mu.Lock()
			delete(d.s.subs, d.ref)
			d.s.notifyLocked()
			d.s.mu.Unlock()
		}()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d.s.wg.Add(1)
		go func() {
			defer d.s.wg.Done()
			select {
			case <-conn.Done():
			case <-d.quit:
			case <-ctx.Done():
			}
			cancel()
		}()
		for {
			d.mu.Lock()
			q := d.q
			d.q = nil
			d.mu.Unlock()
			for _, set := range q {
				if _, err := d.ref.Call(ctx, "announce_v2", []any{set}, nil); err != nil && ctx.Err() != nil {
					return
				}
			}
			select {
			case <-d.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
}

func violation(detail string) error {
	const typ = "foolscap.tokens.Violation"
	return &foolscap.RemoteError{Type: typ, Value: detail, Traceback: "Traceback unavailable\n",
		Parents: []string{typ, "builtins.Exception", "builtins.BaseException", "builtins.object"}}
}
