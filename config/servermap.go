package config

import (
	"bytes"
	"iter"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/tubfarm/tubfarm/hints"
)

// An Announced is a storage announcement as delivered by one introducer,
// live or from its cache.
type Announced struct {
	// Introducer is the petname of the introducer that delivered it.
	Introducer string
	// Key is the server id ("v0-" key) the announcement is signed by, or
	// key_s of a cache entry.
	Key string
	// Announcement is the announcement dictionary.
	Announcement Announcement
	// Verified reports that the signature was checked.
	Verified bool
	// Path and Line locate the cache entry it came from, if any.
	Path string
	Line int
}

// Announced returns the cache's entries as announcements delivered by the
// introducer with the given petname.
func (c *Cache) Announced(petname string) []Announced {
	if c == nil {
		return nil
	}
	out := make([]Announced, 0, len(c.Entries))
	for _, e := range c.Entries {
		out = append(out, Announced{Introducer: petname, Key: e.Key, Announcement: e.Announcement,
			Verified: e.Verified(), Path: c.Path, Line: e.Line})
	}
	return out
}

// An AnnouncementError reports an announcement that [Merge] could not use.
type AnnouncementError struct {
	Introducer string
	Key        string
	Path       string // cache file, if the announcement came from one
	Line       int
	Err        error
}

// Error formats the error as "config: PATH:LINE: announcement of KEY from
// introducer "PETNAME": message" (PATH:LINE only for cached ones).
func (e *AnnouncementError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		if e.Line > 0 {
			b.WriteString(":" + itoa(e.Line))
		}
		b.WriteString(": ")
	}
	b.WriteString("announcement of " + e.Key + " from introducer " + quote(e.Introducer) + ": " + e.Err.Error())
	return b.String()
}

// Unwrap returns e.Err.
func (e *AnnouncementError) Unwrap() error { return e.Err }

// Source records where a [ServerMap] entry came from.
type Source struct {
	// Static is true when the entry comes from servers.yaml, at Path:Line.
	// Static entries are never replaced by announcements.
	Static bool
	Path   string
	Line   int
	// Introducers are the petnames of every introducer that announced this
	// server (sorted). For a static entry these announcements were
	// ignored.
	Introducers []string
	// Chosen is the petname whose announcement the entry uses ("" for a
	// static entry), and Verified whether its signature was checked.
	Chosen   string
	Verified bool
}

// An Entry is one storage server of a [ServerMap].
type Entry struct {
	// ID is the server id: the "v0-" key, or the servers.yaml id.
	ID string
	// Nickname is the announcement's nickname ("" if none).
	Nickname string
	// Announcement is the announcement in use.
	Announcement Announcement
	// FURL is its parsed anonymous-storage-FURL.
	FURL hints.FURL
	// NURLs are its parsed anonymous-storage-NURLs (HTTPS storage), in
	// announcement order; NURLErrors the ones that did not parse, which
	// are left out without affecting the rest of the entry.
	NURLs      []hints.NURL
	NURLErrors []error
	// PermutationSeed is the seed for server selection ([PermutationSeed]).
	PermutationSeed []byte
	// Connections is the servers.yaml "connections" override, nil if none.
	Connections map[string]string
	// Policy is the effective connection policy for this server.
	Policy hints.Policy
	// Source is the entry's provenance.
	Source Source
}

// SameEffect reports whether e and o would be dialled identically: same
// FURL and same effective policy. Differences only in nickname, seqnum,
// nonce or provenance do not count, so a server re-announced through
// another introducer does not need a new connection.
func (e Entry) SameEffect(o Entry) bool {
	return e.FURL.Equal(o.FURL) && slices.Equal(e.NURLs, o.NURLs) && policyEqual(e.Policy, o.Policy)
}

func policyEqual(a, b hints.Policy) bool { return a.Equal(b) }

// A ServerMap is an immutable set of storage servers keyed by server id.
// The nil *ServerMap is an empty map. Build one with [Merge].
type ServerMap struct {
	entries map[string]*Entry
	ids     []string
}

// Len returns the number of servers.
func (m *ServerMap) Len() int {
	if m == nil {
		return 0
	}
	return len(m.ids)
}

// Get returns the entry for id.
func (m *ServerMap) Get(id string) (Entry, bool) {
	if m == nil {
		return Entry{}, false
	}
	e, ok := m.entries[id]
	if !ok {
		return Entry{}, false
	}
	return e.clone(), true
}

// IDs returns the server ids in sorted order.
func (m *ServerMap) IDs() []string {
	if m == nil {
		return nil
	}
	return slices.Clone(m.ids)
}

// All yields every entry in server-id order.
func (m *ServerMap) All() iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		if m == nil {
			return
		}
		for _, id := range m.ids {
			if !yield(m.entries[id].clone()) {
				return
			}
		}
	}
}

// Diff compares m with an older map and returns the sorted ids that were
// added, removed, and changed (present in both but not
// [Entry.SameEffect]). old may be nil.
func (m *ServerMap) Diff(old *ServerMap) (added, removed, changed []string) {
	for _, id := range m.IDs() {
		ne := m.entries[id]
		if old == nil {
			added = append(added, id)
			continue
		}
		oe, ok := old.lookup(id)
		switch {
		case !ok:
			added = append(added, id)
		case !ne.SameEffect(*oe):
			changed = append(changed, id)
		}
	}
	for _, id := range old.IDs() {
		if _, ok := m.lookup(id); !ok {
			removed = append(removed, id)
		}
	}
	return added, removed, changed
}

func (m *ServerMap) lookup(id string) (*Entry, bool) {
	if m == nil {
		return nil, false
	}
	e, ok := m.entries[id]
	return e, ok
}

func (e *Entry) clone() Entry {
	c := *e
	c.PermutationSeed = slices.Clone(e.PermutationSeed)
	c.Connections = maps.Clone(e.Connections)
	c.Source.Introducers = slices.Clone(e.Source.Introducers)
	c.FURL.Hints = slices.Clone(e.FURL.Hints)
	c.NURLs = slices.Clone(e.NURLs)
	c.NURLErrors = slices.Clone(e.NURLErrors)
	return c
}

// Merge builds the server map from introducer announcements and static
// servers, applying tubfarm's merge rules:
//
//   - Only announcements with service-name "storage" are considered.
//   - Per server key, the announcement with the highest seqnum wins across
//     all introducers (a missing seqnum is oldest). On equal seqnum the
//     announcement prev already uses is kept if it is among them, then a
//     verified one is preferred, then the smallest introducer petname,
//     then the smallest JSON encoding: the result depends only on the
//     inputs, never on arrival order.
//   - Every servers.yaml entry (static, may be nil) is in the map, and an
//     announcement whose key equals a static id exactly is ignored, as in
//     Tahoe.
//
// Announcements that cannot be used (bad key, missing or malformed FURL or
// permutation seed) are skipped and reported as *[AnnouncementError] in
// dropped; a later valid one for the same key may still win. cfg supplies
// the node policy for announced servers (nil: Tahoe defaults).
func Merge(cfg *TahoeConfig, announced []Announced, static *Servers, prev *ServerMap) (m *ServerMap, dropped []error) {
	if cfg == nil {
		cfg = DefaultTahoeConfig()
	}
	m = &ServerMap{entries: map[string]*Entry{}}
	petnames := map[string][]string{}
	for _, a := range announced {
		if !slices.Contains(petnames[a.Key], a.Introducer) {
			petnames[a.Key] = append(petnames[a.Key], a.Introducer)
		}
	}
	if static != nil {
		for _, s := range static.Servers {
			intros := slices.Clone(petnames[s.ID])
			sort.Strings(intros)
			m.entries[s.ID] = &Entry{
				ID: s.ID, Nickname: s.Announcement.Nickname, Announcement: s.Announcement,
				FURL: s.FURL, PermutationSeed: s.PermutationSeed, Connections: s.Connections, Policy: s.Policy,
				Source: Source{Static: true, Path: s.Path, Line: s.Line, Introducers: intros},
			}
			m.entries[s.ID].NURLs, m.entries[s.ID].NURLErrors = s.Announcement.NURLs()
		}
	}

	type candidate struct {
		a    Announced
		furl hints.FURL
		seed []byte
		json []byte
	}
	best := map[string]*candidate{}
	var order []string
	for _, a := range announced {
		if a.Announcement.ServiceName != "storage" {
			continue
		}
		if e, ok := m.entries[a.Key]; ok && e.Source.Static {
			continue
		}
		drop := func(err error) {
			dropped = append(dropped, &AnnouncementError{Introducer: a.Introducer, Key: a.Key, Path: a.Path, Line: a.Line, Err: err})
		}
		if _, err := ParseServerKey(a.Key); err != nil {
			drop(err)
			continue
		}
		if a.Announcement.FURL == "" {
			drop(classErr(ErrMissing, "announcement has no "+FieldFURL))
			continue
		}
		f, err := hints.ParseFURL(a.Announcement.FURL)
		if err != nil {
			drop(wrapClass(ErrInvalidValue, FieldFURL, err))
			continue
		}
		seed, err := PermutationSeed(a.Key, a.Announcement)
		if err != nil {
			drop(err)
			continue
		}
		c := &candidate{a: a, furl: f, seed: seed}
		cur := best[a.Key]
		if cur == nil {
			best[a.Key] = c
			order = append(order, a.Key)
			continue
		}
		if better(c.a, cur.a, prev, &c.json, &cur.json) {
			best[a.Key] = c
		}
	}
	for _, key := range order {
		c := best[key]
		intros := slices.Clone(petnames[key])
		sort.Strings(intros)
		m.entries[key] = &Entry{
			ID: key, Nickname: c.a.Announcement.Nickname, Announcement: c.a.Announcement,
			FURL: c.furl, PermutationSeed: c.seed, Policy: cfg.Policy,
			Source: Source{Introducers: intros, Chosen: c.a.Introducer, Verified: c.a.Verified},
		}
		m.entries[key].NURLs, m.entries[key].NURLErrors = c.a.Announcement.NURLs()
	}
	m.ids = slices.Sorted(maps.Keys(m.entries))
	return m, dropped
}

// better reports whether announcement a should replace the current choice
// b for the same key. aj and bj cache JSON encodings for the last
// tie-break.
func better(a, b Announced, prev *ServerMap, aj, bj *[]byte) bool {
	if c := compareSeq(a.Announcement, b.Announcement); c != 0 {
		return c > 0
	}
	if prev != nil {
		if pe, ok := prev.entries[a.Key]; ok && !pe.Source.Static {
			ak, bk := pe.Announcement.Equal(a.Announcement), pe.Announcement.Equal(b.Announcement)
			if ak != bk {
				return ak
			}
		}
	}
	if a.Verified != b.Verified {
		return a.Verified
	}
	if a.Introducer != b.Introducer {
		return a.Introducer < b.Introducer
	}
	if *aj == nil {
		*aj, _ = a.Announcement.MarshalJSON()
	}
	if *bj == nil {
		*bj, _ = b.Announcement.MarshalJSON()
	}
	return bytes.Compare(*aj, *bj) < 0
}

// compareSeq orders announcements by seqnum; a missing seqnum is oldest.
func compareSeq(a, b Announcement) int {
	switch {
	case a.HasSeqnum != b.HasSeqnum:
		if a.HasSeqnum {
			return 1
		}
		return -1
	case a.Seqnum > b.Seqnum:
		return 1
	case a.Seqnum < b.Seqnum:
		return -1
	}
	return 0
}
