package introducer

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/foolscap"
)

// StorageService is the only service name a [Table] accepts.
const StorageService = "storage"

// A Result is what became of one offered announcement.
type Result int

// Results, in the order of the checks that produce them.
const (
	// Accepted: verified, new or newer, stored.
	Accepted Result = iota
	// Invalid: not a (msg, sig, key) triple of byte strings, or a signed
	// message that is not a JSON object with the fields' usual types.
	Invalid
	// OverLimit: beyond one of the [Limits].
	OverLimit
	// Unsigned: no signature or key, or not in the "v0-" format.
	Unsigned
	// BadSignature: the Ed25519 signature does not verify with the key.
	BadSignature
	// WrongService: a service other than "storage".
	WrongService
	// Duplicate: equal to the announcement already held.
	Duplicate
	// StaleSeqnum: not newer than the announcement held from this
	// introducer (or found in its cache at start): a replay, refused.
	StaleSeqnum
	// Superseded: new for this introducer, but older than one another
	// introducer (or another cache) holds for the same server. It is
	// stored, as what this introducer announces, but can never be the one
	// used: the merge takes the newest seqnum across introducers.
	Superseded

	numResults
)

var resultNames = [numResults]string{
	Accepted: "accepted", Invalid: "invalid", OverLimit: "over_limit", Unsigned: "unsigned",
	BadSignature: "bad_signature", WrongService: "wrong_service", Duplicate: "duplicate",
	StaleSeqnum: "stale_seqnum", Superseded: "superseded",
}

// String returns the result's metric label ("accepted", "stale_seqnum", …).
func (r Result) String() string {
	if r >= 0 && r < numResults {
		return resultNames[r]
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Results lists every Result, for metrics that must show all of them.
func Results() []Result {
	out := make([]Result, numResults)
	for i := range out {
		out[i] = Result(i)
	}
	return out
}

// Limits bound what one introducer can make the client hold or do. Zero
// fields take the defaults below.
type Limits struct {
	// MaxSetSize is the most announcements one announce_v2 call may
	// carry; a larger set is refused whole and every item counted
	// OverLimit. Default 10 000.
	MaxSetSize int
	// MaxServers is the most server keys one introducer may hold; an
	// announcement for a new key beyond it is OverLimit. Default 10 000.
	MaxServers int
	// MaxMessageBytes bounds the signed JSON message. Default 64 KiB.
	MaxMessageBytes int
	// MaxDepth bounds the nesting of the JSON message (the object itself
	// is depth 1). Default 8.
	MaxDepth int
	// MaxNicknameBytes bounds the nickname. Default 1 KiB.
	MaxNicknameBytes int
	// MaxHints bounds the connection hints of the storage FURL. Default 64.
	MaxHints int
}

// Default limits.
const (
	DefaultMaxSetSize       = 10000
	DefaultMaxServers       = 10000
	DefaultMaxMessageBytes  = 64 << 10
	DefaultMaxDepth         = 8
	DefaultMaxNicknameBytes = 1 << 10
	DefaultMaxHints         = 64
)

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxSetSize, DefaultMaxSetSize)
	def(&l.MaxServers, DefaultMaxServers)
	def(&l.MaxMessageBytes, DefaultMaxMessageBytes)
	def(&l.MaxDepth, DefaultMaxDepth)
	def(&l.MaxNicknameBytes, DefaultMaxNicknameBytes)
	def(&l.MaxHints, DefaultMaxHints)
	return l
}

// Seqnums remembers the highest seqnum accepted for each server key from
// any introducer or cache. It is shared by the Tables of one node, so that
// an older announcement cannot come back through another introducer or
// after a restart (Tahoe forgets seqnums and would accept it). Its size is
// bounded by the Tables' MaxServers. It is safe for concurrent use.
type Seqnums struct {
	mu sync.Mutex
	m  map[string]int64
}

// NewSeqnums returns an empty table.
func NewSeqnums() *Seqnums { return &Seqnums{m: make(map[string]int64)} }

// Highest returns the highest seqnum seen for key.
func (s *Seqnums) Highest(key string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.m[key]
	return n, ok
}

// known reports whether any seqnum was recorded for key.
func (s *Seqnums) known(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[key]
	return ok
}

// observe records seq for key if it is the highest so far. It reports
// false, recording nothing, if seq is below the highest.
func (s *Seqnums) observe(key string, seq int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[key]; ok && seq < cur {
		return false
	}
	s.m[key] = seq
	return true
}

// An Entry is one accepted announcement.
type Entry struct {
	Signed       config.Signed
	Announcement config.Announcement
}

// A Table holds one introducer's accepted announcements, one per server
// key, and applies the acceptance rules to each new one. It is safe for
// concurrent use.
type Table struct {
	limits Limits
	seq    *Seqnums

	mu      sync.Mutex
	entries map[string]Entry // by server key
	counts  [numResults]uint64
}

// NewTable returns an empty table with limits l (zero fields default) that
// records seqnums in seq (nil: a table of its own).
func NewTable(l Limits, seq *Seqnums) *Table {
	if seq == nil {
		seq = NewSeqnums()
	}
	return &Table{limits: l.WithDefaults(), seq: seq, entries: make(map[string]Entry)}
}

// Limits returns the table's limits, defaults filled in.
func (t *Table) Limits() Limits { return t.limits }

// Seed loads the signed entries of a cache (unsigned ones are skipped: they
// were never verified) through the same rules as live announcements, and
// returns how many were stored. Seeded entries are not counted in
// [Table.Counts].
func (t *Table) Seed(entries []config.CacheEntry) int {
	n := 0
	for _, e := range entries {
		if e.Signed == nil {
			continue
		}
		if r, _, _ := t.offer(*e.Signed, false); r.Stored() {
			n++
		}
	}
	return n
}

// OfferWire applies the rules to one item of an announce_v2 set, which
// must be a tuple (or list) of three byte strings (msg, sig, key).
func (t *Table) OfferWire(item any) (Result, *Entry, error) {
	s, err := wireTriple(item)
	if err != nil {
		t.count(Invalid)
		return Invalid, nil, err
	}
	return t.Offer(s)
}

// An Outcome is the result of one item of [Table.OfferAll].
type Outcome struct {
	Result Result
	Entry  *Entry // set when Result.Stored()
	Err    error  // why anything else was refused
}

// OfferAll offers every item of one announce_v2 set, as OfferWire would in
// turn, but checks the signatures on up to GOMAXPROCS goroutines before
// storing the items in order.
func (t *Table) OfferAll(items []any) []Outcome {
	out := make([]Outcome, len(items))
	checked := make([]*Entry, len(items))
	keys := make([]string, len(items))
	work := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			s, err := wireTriple(items[i])
			if err != nil {
				out[i] = Outcome{Result: Invalid, Err: err}
				continue
			}
			r, e, err := t.check(s)
			out[i], checked[i], keys[i] = Outcome{Result: r, Err: err}, e, s.Key
		}
	}
	workers := min(runtime.GOMAXPROCS(0), 8, max(1, len(items)/64))
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(items)/workers, (w+1)*len(items)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(lo, hi)
		}()
	}
	wg.Wait()
	for i := range out {
		if out[i].Result == Accepted {
			out[i].Result, out[i].Err = t.store(keys[i], checked[i])
			if out[i].Result.Stored() {
				out[i].Entry = checked[i]
			}
		}
		t.count(out[i].Result)
	}
	return out
}

// Offer applies the rules to one signed announcement and, if it is
// stored (Accepted or Superseded), returns the entry. The error says why anything
// else was refused.
func (t *Table) Offer(s config.Signed) (Result, *Entry, error) { return t.offer(s, true) }

func (t *Table) offer(s config.Signed, counted bool) (Result, *Entry, error) {
	r, e, err := t.check(s)
	if r == Accepted {
		r, err = t.store(s.Key, e)
	}
	if counted {
		t.count(r)
	}
	if !r.Stored() {
		return r, nil, err
	}
	return r, e, nil
}

// check runs the stateless rules, cheapest first.
func (t *Table) check(s config.Signed) (Result, *Entry, error) {
	l := t.limits
	if len(s.Msg) > l.MaxMessageBytes {
		return OverLimit, nil, fmt.Errorf("introducer: message of %d bytes exceeds the limit of %d", len(s.Msg), l.MaxMessageBytes)
	}
	if d := jsonDepth(s.Msg); d > l.MaxDepth {
		return OverLimit, nil, fmt.Errorf("introducer: message nested %d levels deep exceeds the limit of %d", d, l.MaxDepth)
	}
	if s.Sig == "" || s.Key == "" || !strings.HasPrefix(s.Sig, "v0-") || !strings.HasPrefix(s.Key, "v0-") {
		return Unsigned, nil, errors.New("introducer: announcement is not signed with a v0- key")
	}
	if _, err := config.ParseServerKey(s.Key); err != nil {
		return BadSignature, nil, err // nothing can verify with a malformed key
	}
	ann, err := s.Verify()
	switch {
	case errors.Is(err, config.ErrUnknownKeyType):
		return Unsigned, nil, err
	case errors.Is(err, config.ErrBadSignature):
		return BadSignature, nil, err
	case err != nil:
		return Invalid, nil, err
	}
	if ann.ServiceName != StorageService {
		return WrongService, nil, fmt.Errorf("introducer: service %q is not %q", ann.ServiceName, StorageService)
	}
	if len(ann.Nickname) > l.MaxNicknameBytes {
		return OverLimit, nil, fmt.Errorf("introducer: nickname of %d bytes exceeds the limit of %d", len(ann.Nickname), l.MaxNicknameBytes)
	}
	if n := countHints(ann.FURL); n > l.MaxHints {
		return OverLimit, nil, fmt.Errorf("introducer: FURL with %d hints exceeds the limit of %d", n, l.MaxHints)
	}
	return Accepted, &Entry{Signed: s, Announcement: ann}, nil
}

// store applies the per-introducer and cross-introducer seqnum rules and
// stores e.
func (t *Table) store(key string, e *Entry) (Result, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, held := t.entries[key]
	a := e.Announcement
	if held {
		if old.Announcement.Equal(a) {
			return Duplicate, nil
		}
		if old.Announcement.HasSeqnum && (!a.HasSeqnum || a.Seqnum <= old.Announcement.Seqnum) {
			return StaleSeqnum, fmt.Errorf("introducer: seqnum %d of %s is not newer than %d", a.Seqnum, key, old.Announcement.Seqnum)
		}
	} else if len(t.entries) >= t.limits.MaxServers {
		return OverLimit, fmt.Errorf("introducer: already holding the limit of %d servers", t.limits.MaxServers)
	}
	t.entries[key] = *e
	if a.HasSeqnum && !t.seq.observe(key, a.Seqnum) || !a.HasSeqnum && t.seq.known(key) {
		return Superseded, nil
	}
	return Accepted, nil
}

// Stored reports whether an offer with this result was stored: Accepted
// or Superseded.
func (r Result) Stored() bool { return r == Accepted || r == Superseded }

func (t *Table) count(r Result) {
	t.mu.Lock()
	t.counts[r]++
	t.mu.Unlock()
}

// Counts returns how many live offers ended in each result.
func (t *Table) Counts() map[Result]uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[Result]uint64, numResults)
	for r, n := range t.counts {
		out[Result(r)] = n
	}
	return out
}

// Len returns the number of servers held.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// Entries returns the accepted announcements as cache entries, sorted by
// server key. Every one carries its verified signed form.
func (t *Table) Entries() []config.CacheEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]config.CacheEntry, 0, len(t.entries))
	for _, k := range slices.Sorted(maps.Keys(t.entries)) {
		e := t.entries[k]
		s := e.Signed
		out = append(out, config.CacheEntry{Key: k, Announcement: e.Announcement, Signed: &s})
	}
	return out
}

// wireTriple converts an announce_v2 item, a tuple of three byte strings.
func wireTriple(item any) (config.Signed, error) {
	var parts []any
	switch v := item.(type) {
	case foolscap.Tuple:
		parts = v
	case []any:
		parts = v
	}
	if len(parts) != 3 {
		return config.Signed{}, fmt.Errorf("introducer: announcement is %T, not a tuple of (msg, sig, key)", item)
	}
	var b [3][]byte
	for i, p := range parts {
		switch x := p.(type) {
		case []byte:
			b[i] = x
		default:
			return config.Signed{}, fmt.Errorf("introducer: announcement item %d is %T, not bytes", i, p)
		}
	}
	return config.Signed{Msg: b[0], Sig: string(b[1]), Key: string(b[2])}, nil
}

// jsonDepth returns the deepest nesting of arrays and objects in msg,
// ignoring brackets inside strings. It reads msg once and allocates
// nothing.
func jsonDepth(msg []byte) int {
	depth, deepest := 0, 0
	inStr, esc := false, false
	for _, c := range msg {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// countHints counts the connection hints of a FURL
// ("pb://tubid@hint,hint,.../name") without parsing them.
func countHints(furl string) int {
	rest, ok := strings.CutPrefix(furl, "pb://")
	if !ok {
		return 0
	}
	_, rest, ok = strings.Cut(rest, "@")
	if !ok {
		return 0
	}
	loc, _, _ := strings.Cut(rest, "/")
	if loc == "" {
		return 0
	}
	return strings.Count(loc, ",") + 1
}
