package tubfarm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/httpstorage"
	"github.com/tubfarm/tubfarm/messages"
	"github.com/tubfarm/tubfarm/storage"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// Defaults of an HTTPS storage session's liveness check. HTTPS storage has
// no long-lived connection to watch, so a session asks get_version every
// DefaultHTTPSPoll and ends when an answer takes longer than
// DefaultHTTPSPollTimeout or fails (Tahoe asks every second, with a 5 s
// limit).
const (
	DefaultHTTPSPoll        = 10 * time.Second
	DefaultHTTPSPollTimeout = 5 * time.Second
)

// httpsOptions configure the connector's HTTPS storage sessions.
type httpsOptions struct {
	fallback    bool // try the FURL in the same attempt when every NURL fails
	poll        time.Duration
	pollTimeout time.Duration
	clock       actors.Clock // times the polls; the broker's clock
}

// chooseProtocol is the one place the storage protocol of a server is
// decided, as Tahoe 1.20 decides it: HTTPS when the server announces NURLs
// and [client] force_foolscap is not set, Foolscap otherwise.
func chooseProtocol(nurls []hints.NURL, forceFoolscap bool) string {
	if len(nurls) > 0 && !forceFoolscap {
		return httpstorage.ProtoHTTPS
	}
	return storage.ProtoFoolscap
}

// maxBadNURL caps the length of a bad NURL and of its reason in status:
// the text comes from a stranger's announcement.
const maxBadNURL = 200

// badNURLs turns the parse errors of a server's NURLs into what its status
// shows among the hints: the NURL, swissnum redacted (or, for an entry that
// is not a string, the announcement field), and why it is unusable.
func badNURLs(errs []error) []messages.BadNURL {
	var out []messages.BadNURL
	for _, err := range errs {
		b := messages.BadNURL{Reason: err.Error()}
		var ne *hints.NURLError
		var fe interface{ Field() string }
		switch {
		case errors.As(err, &ne):
			b.NURL, b.Reason = ne.Redacted(), ne.Msg
		case errors.As(err, &fe):
			b.NURL = fe.Field()
		default:
			b.NURL = config.FieldNURLs
		}
		out = append(out, messages.BadNURL{NURL: clip(b.NURL), Reason: clip(b.Reason)})
	}
	return out
}

// clip makes s valid UTF-8 and at most maxBadNURL bytes long (plus an
// ellipsis).
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\ufffd")
	if len(s) > maxBadNURL {
		s = strings.ToValidUTF8(s[:maxBadNURL], "") + "…"
	}
	return s
}

// fallbackStatus is the hint status reported when every NURL failed and the
// FURL is tried.
const fallbackStatus = "every NURL failed: trying the FURL (Foolscap fallback)"

// connectHTTPS races every usable NURL of srv with a get_version; the
// first answer wins and the others are cancelled. Each NURL is dialed
// through the handler the server's policy gives its host (a pb+tor NURL
// as a tor: hint), with this identity's transports: its own SOCKS
// credentials, as for Foolscap. The identity's certificate is never made:
// HTTPS storage sends none.
func (c *connector) connectHTTPS(ctx context.Context, srv messages.ServerSpec, id *actors.Identity, report func(hint, status string)) (actors.Session, error) {
	c.peer(srv.ID, id.Key) // retires the transports of the server's previous identity
	dialers := c.tr.ForIdentity(id.Key)
	type cand struct {
		nurl    hints.NURL
		key     string
		handler hints.Handler
		dial    hints.DialFunc
	}
	var cands []cand
	for _, n := range srv.NURLs {
		key := n.Redacted()
		d := srv.Policy.Decide(n.Hint.Raw)
		if !d.Usable {
			report(key, d.Status)
			continue
		}
		dial := dialers[d.Handler]
		if dial == nil {
			report(key, "bad hint: no handler registered")
			continue
		}
		if len(cands) == MaxDialHints {
			report(key, notTriedNURL)
			continue
		}
		cands = append(cands, cand{nurl: n, key: key, handler: d.Handler, dial: dial})
	}
	var failure error
	if len(cands) == 0 {
		failure = &actors.ConnectError{Reason: actors.ReasonNoHints, Permanent: true, Err: errNoUsableHints}
	} else {
		type result struct {
			i   int
			cl  *httpstorage.Client
			v   storage.Version
			d   time.Duration
			err error
		}
		rctx, cancel := context.WithCancel(ctx)
		results := make(chan result, len(cands))
		for i, cd := range cands {
			report(cd.key, "connecting")
			go func() {
				cl := httpstorage.New(cd.nurl, httpstorage.Config{Dial: cd.dial, TLSConfig: c.tlsTweak})
				start := time.Now()
				v, err := cl.GetVersion(rctx)
				results <- result{i, cl, v, time.Since(start), err}
			}()
		}
		var win *result
		var errs []error
		for range cands {
			r := <-results
			cd := cands[r.i]
			if r.err != nil || win != nil {
				r.cl.Close()
				if r.err != nil && win == nil {
					report(cd.key, statusText(r.err))
					errs = append(errs, &actors.ConnectError{Handler: string(cd.handler), Err: r.err})
				}
				continue
			}
			win = &r
			report(cd.key, "successful")
			cancel()
		}
		cancel()
		if win != nil {
			cd := cands[win.i]
			return newHTTPSSession(win.cl, win.v, actors.SessionInfo{
				Protocol:   httpstorage.ProtoHTTPS,
				Hint:       cd.key,
				Handler:    string(cd.handler),
				TLSVersion: win.cl.TLSState().Version,
				PeerTubID:  "spki:" + cd.nurl.SPKIHash,
				Timings:    actors.PhaseTimings{TLS: win.d},
			}, c.https), nil
		}
		failure = pickError(errs)
	}
	if c.https.fallback && ctx.Err() == nil {
		report("fallback", fallbackStatus)
		fs, err := c.dial(ctx, srv, id, report)
		if err != nil {
			return nil, err
		}
		return fs, nil
	}
	return nil, failure
}

// pickError returns the most telling of the NURLs' errors: a certificate
// mismatch first (it is counted like a wrong TubID), else the first.
func pickError(errs []error) error {
	for _, err := range errs {
		var mm *tubtls.MismatchError
		if errors.As(err, &mm) {
			return err
		}
	}
	return errs[0]
}

// statusText is a failure as a hint status: short, without the swissnum
// (which no error of httpstorage contains).
func statusText(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "connection failed: "); i >= 0 {
		s = s[i+len("connection failed: "):]
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// httpsSession is a live HTTPS storage session: the server's client and a
// goroutine that checks, every poll interval of the broker's clock, that
// the server still answers. It ends when a check fails or it is closed.
type httpsSession struct {
	cl      *httpstorage.Client
	info    actors.SessionInfo
	version storage.Version
	clock   actors.Clock
	tick    chan struct{} // the poll timer fired

	last      atomic.Int64 // unix nanoseconds of the last answer
	done      chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	mu        sync.Mutex
	err       error
}

func newHTTPSSession(cl *httpstorage.Client, v storage.Version, info actors.SessionInfo, o httpsOptions) *httpsSession {
	s := &httpsSession{cl: cl, info: info, version: v, clock: o.clock,
		tick: make(chan struct{}, 1), done: make(chan struct{}), stop: make(chan struct{})}
	if s.clock == nil {
		s.clock = actors.RealClock()
	}
	s.last.Store(s.clock.Now().UnixNano())
	poll, timeout := o.poll, o.pollTimeout
	if poll <= 0 {
		poll = DefaultHTTPSPoll
	}
	if timeout <= 0 {
		timeout = DefaultHTTPSPollTimeout
	}
	// The first timer is armed before the session is returned, so that a
	// test's clock has it pending once the server shows as connected.
	t := s.arm(poll)
	s.wg.Add(1)
	go s.watch(t, poll, timeout)
	return s
}

// arm starts a timer of the session's clock that wakes watch after d.
func (s *httpsSession) arm(d time.Duration) actors.Timer {
	return s.clock.AfterFunc(d, func() {
		select {
		case s.tick <- struct{}{}:
		default:
		}
	})
}

// watch asks get_version each time the poll timer fires, with a limit of
// timeout (on the real clock, like the connection attempts), and ends the
// session at the first failure.
func (s *httpsSession) watch(t actors.Timer, poll, timeout time.Duration) {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-s.tick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		_, err := s.cl.GetVersion(ctx)
		cancel()
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			s.end(err)
			return
		}
		s.last.Store(s.clock.Now().UnixNano())
		t = s.arm(poll)
	}
}

func (s *httpsSession) end(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		close(s.done)
	}
	s.mu.Unlock()
}

// Call answers "get_version" with the version in Foolscap's shape (the
// broker records it for status); any other raw call needs Foolscap.
func (s *httpsSession) Call(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	if method == "get_version" && len(args) == 0 && len(kwargs) == 0 {
		v, err := s.cl.GetVersion(ctx)
		if err != nil {
			return nil, err
		}
		s.last.Store(s.clock.Now().UnixNano())
		return storage.VersionToFoolscap(v), nil
	}
	return nil, fmt.Errorf("tubfarm: %w: %s", ErrNotFoolscap, method)
}

// ErrNotFoolscap is returned by Server.Call on a server reached over HTTPS
// storage, which has no remote objects to call; use Server.Storage.
var ErrNotFoolscap = errors.New("raw Foolscap call on a server that uses HTTPS storage")

func (s *httpsSession) Done() <-chan struct{} { return s.done }

func (s *httpsSession) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *httpsSession) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.end(errHTTPSClosed)
		s.cl.Close()
	})
	return nil
}

var errHTTPSClosed = errors.New("tubfarm: HTTPS storage session closed")

func (s *httpsSession) LastReceived() time.Time  { return time.Unix(0, s.last.Load()) }
func (s *httpsSession) Info() actors.SessionInfo { return s.info }

// Storage returns the typed storage API.
func (s *httpsSession) Storage() storage.Server { return s.cl }
