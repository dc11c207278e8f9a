package introducer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/tubfarm/tubfarm/foolscap"
)

// RemoteInterface names and keys of Tahoe-LAFS's introducer protocol v2.
const (
	// PublisherInterface is the introducer object a FURL names: it serves
	// get_version, publish_v2(announcement, canary) and
	// subscribe_v2(subscriber, service_name, subscriber_info).
	PublisherInterface = "RIIntroducerPublisherAndSubscriberService_v2.tahoe.allmydata.com"
	// SubscriberInterface is the client's object, which serves
	// announce_v2(announcements).
	SubscriberInterface = "RIIntroducerSubscriberClient_v2.tahoe.allmydata.com"
	// ProtocolV2 is the key of a v2 introducer's get_version answer.
	ProtocolV2 = "http://allmydata.org/tahoe/protocols/introducer/v2"
)

// ErrNotV2 reports an introducer whose get_version answer lacks the v2
// key (or is not a dictionary of byte-string keys). Tahoe then keeps the
// connection but neither publishes nor subscribes; so does tubfarm.
var ErrNotV2 = errors.New("introducer: not a v2 introducer")

// CheckVersion checks a get_version answer: a dictionary whose keys are
// all byte strings, holding ProtocolV2.
func CheckVersion(v any) error {
	d, ok := v.(foolscap.Dict)
	if !ok {
		return fmt.Errorf("%w: get_version answered %T, not a dict", ErrNotV2, v)
	}
	found := false
	for _, it := range d {
		k, ok := it.Key.([]byte)
		if !ok {
			return fmt.Errorf("%w: get_version has a %T key, not bytes", ErrNotV2, it.Key)
		}
		if string(k) == ProtocolV2 {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%w: get_version has no %q", ErrNotV2, ProtocolV2)
	}
	return nil
}

// SubscriberInfo returns the subscriber_info dictionary sent with
// subscribe_v2: byte-string keys, text values, as Tahoe sends it. The
// introducer shows it to its operator; tubfarm sends the nickname it is
// given ("" by default, see docs/introducers.md) and its own version.
func SubscriberInfo(nickname, myVersion string) foolscap.Dict {
	return foolscap.BytesDict(map[string]any{
		"version":          int64(0),
		"nickname":         nickname,
		"app-versions":     []any{},
		"my-version":       myVersion,
		"oldest-supported": "1.0.0",
	})
}

// A Subscriber is the object an introducer calls back with announce_v2. Each
// call's set is checked against the Table's limits and each item offered to
// the Table; OnAccepted then receives the batch's stored entries (if any)
// before the call is answered, so that the introducer's next push waits for
// it. A Subscriber is sent once per connection; make a new one for each.
type Subscriber struct {
	Table *Table
	// OnAccepted, if set, receives each call's stored entries (Accepted
	// and Superseded). It runs
	// on the connection's inbound-call goroutine.
	OnAccepted func([]Entry)
	// OnCall, if set, is called at the start of every announce_v2 call,
	// and OnDone at its end (after OnAccepted), whatever its outcome.
	OnCall, OnDone func()
	// Logger receives one warning per kind of refusal (nil: none).
	Logger *slog.Logger

	mu     sync.Mutex
	logged [numResults]bool
}

var _ foolscap.Referenceable = (*Subscriber)(nil)

// InterfaceName returns SubscriberInterface.
func (s *Subscriber) InterfaceName() string { return SubscriberInterface }

// CallRemote serves announce_v2(announcements=SetOf(Any)).
func (s *Subscriber) CallRemote(_ context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	if method != "announce_v2" {
		return nil, foolscap.UnknownMethod(SubscriberInterface, method)
	}
	if s.OnCall != nil {
		s.OnCall()
	}
	if s.OnDone != nil {
		defer s.OnDone()
	}
	var arg any
	switch {
	case len(args) == 1 && len(kwargs) == 0:
		arg = args[0]
	case len(args) == 0 && len(kwargs) == 1:
		v, ok := kwargs["announcements"]
		if !ok {
			return nil, violation("announce_v2 takes one argument, announcements")
		}
		arg = v
	default:
		return nil, violation("announce_v2 takes one argument, announcements")
	}
	var items []any
	switch v := arg.(type) {
	case foolscap.Set:
		items = v
	case foolscap.FrozenSet:
		items = v
	default:
		return nil, violation(fmt.Sprintf("announcements must be a set, not %T", arg))
	}
	if max := s.Table.limits.MaxSetSize; len(items) > max {
		for range items {
			s.Table.count(OverLimit)
		}
		err := fmt.Errorf("introducer: set of %d announcements exceeds the limit of %d", len(items), max)
		s.logOnce(OverLimit, err)
		return nil, violation(err.Error())
	}
	var accepted []Entry
	for _, o := range s.Table.OfferAll(items) {
		if o.Result.Stored() {
			accepted = append(accepted, *o.Entry)
			continue
		}
		if o.Result != Duplicate {
			s.logOnce(o.Result, o.Err)
		}
	}
	if len(accepted) > 0 && s.OnAccepted != nil {
		s.OnAccepted(accepted)
	}
	return nil, nil
}

var _ foolscap.RefusalObserver = (*Subscriber)(nil)

// CallRefused counts an announce_v2 call that the connection refused before
// CallRemote ran: its set broke the Foolscap decoder's limits (more than
// foolscap.Limits.MaxItems items, a string or message too large)
// or was malformed. Its items were never read, so the whole set counts once:
// as OverLimit when a limit was broken, else as Invalid.
func (s *Subscriber) CallRefused(method string, err error) {
	if method != "announce_v2" {
		return
	}
	r := Invalid
	for _, limit := range []error{foolscap.ErrTooManyItems, foolscap.ErrMessageTooLarge, foolscap.ErrStringTooLong} {
		if errors.Is(err, limit) {
			r = OverLimit
		}
	}
	s.Table.count(r)
	s.logOnce(r, fmt.Errorf("introducer: announce_v2 refused before its set was read: %w", err))
}

// logOnce logs the first refusal of each kind on this subscriber.
func (s *Subscriber) logOnce(r Result, err error) {
	if s.Logger == nil || err == nil {
		return
	}
	s.mu.Lock()
	first := !s.logged[r]
	s.logged[r] = true
	s.mu.Unlock()
	if first {
		s.Logger.Warn("introducer: announcement refused (further ones of this kind are only counted)",
			slog.String("result", r.String()), slog.Any("error", err))
	}
}

func violation(detail string) error {
	const typ = "foolscap.tokens.Violation"
	return &foolscap.RemoteError{Type: typ, Value: detail, Traceback: "Traceback unavailable\n",
		Parents: []string{typ, "foolscap.tokens.BananaError", "builtins.Exception", "builtins.BaseException", "builtins.object"}}
}

// Subscribe asks the introducer ref for its version and, if it speaks v2,
// subscribes sub to "storage" with info. It returns the get_version answer
// and, for an introducer that is not v2, an error wrapping ErrNotV2 (the
// caller may keep the connection, as Tahoe does). The introducer calls
// announce_v2 on sub before it answers subscribe_v2, so the connection must
// be serving inbound calls meanwhile (a foolscap.Conn always is).
func Subscribe(ctx context.Context, ref *foolscap.RemoteRef, sub *Subscriber, info foolscap.Dict) (version any, err error) {
	version, err = ref.Call(ctx, "get_version", nil, nil)
	if err != nil {
		var re *foolscap.RemoteError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%w: get_version failed: %v", ErrNotV2, err)
		}
		return nil, fmt.Errorf("introducer: get_version: %w", err)
	}
	if err := CheckVersion(version); err != nil {
		return version, err
	}
	if _, err := ref.Call(ctx, "subscribe_v2", []any{sub, []byte(StorageService), info}, nil); err != nil {
		return version, fmt.Errorf("introducer: subscribe_v2: %w", err)
	}
	return version, nil
}
