// Package memstore is an in-memory Tahoe-LAFS storage server for tests, the
// demo and the benchmarks. One [Store] holds immutable and mutable shares;
// [Store.Foolscap] serves it as RIStorageServer and [Store.HTTP] as Tahoe's
// HTTPS storage protocol, and [Serve] puts both on one port, as Tahoe does:
// the first bytes of each connection decide.
//
// Both protocols apply the same rules to the same state, so a client sees
// the same answers whichever it uses. The HTTPS side makes the checks of
// Tahoe 1.20's server: authorization (401), secrets (400), Accept (406),
// Content-Type (415) and body sizes (413), in that order.
package memstore

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/tubfarm/tubfarm/storage"
)

// Refusal is a request the store refuses. Status is the HTTP status the
// HTTPS side answers; Type the exception type the Foolscap side sends.
type Refusal struct {
	Status int
	Type   string
	Msg    string
}

func (r *Refusal) Error() string { return fmt.Sprintf("%d %s: %s", r.Status, r.Type, r.Msg) }

func refuse(status int, typ, format string, args ...any) *Refusal {
	return &Refusal{Status: status, Type: typ, Msg: fmt.Sprintf(format, args...)}
}

// MaxMutableShareSize is what Tahoe's server reports as its mutable limit.
const MaxMutableShareSize = 69105000000000000

// Config sizes a Store.
type Config struct {
	// Version is the application version it reports; default
	// "tahoe-lafs/1.20.0".
	Version string
	// Capacity is the space it offers; default 1 GiB. Shares count
	// against it.
	Capacity uint64
}

// Store is an in-memory storage server. It is safe for concurrent use.
type Store struct {
	cfg Config

	mu       sync.Mutex
	used     uint64
	complete map[storage.Index]map[storage.ShareNum][]byte
	uploads  map[storage.Index]map[storage.ShareNum]*upload
	slots    map[storage.Index]*slot
	leases   map[storage.Index]int
	advice   []Advice
	spare    [][]byte // buffers of dropped shares, for reuse
}

// Advice is one corruption advisory the store received.
type Advice struct {
	Kind   storage.ShareKind
	Index  storage.Index
	Share  storage.ShareNum
	Reason string
}

type upload struct {
	size    uint64
	data    []byte
	written []span // sorted, merged
	secret  []byte // the HTTPS upload secret; nil over Foolscap
}

type span struct{ begin, end uint64 }

type slot struct {
	we     storage.Secret
	shares map[storage.ShareNum][]byte
}

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.Version == "" {
		cfg.Version = "tahoe-lafs/1.20.0"
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = 1 << 30
	}
	return &Store{
		cfg:      cfg,
		complete: make(map[storage.Index]map[storage.ShareNum][]byte),
		uploads:  make(map[storage.Index]map[storage.ShareNum]*upload),
		slots:    make(map[storage.Index]*slot),
		leases:   make(map[storage.Index]int),
	}
}

// Version returns what the store reports, flags included.
func (s *Store) Version() storage.Version {
	s.mu.Lock()
	free := s.cfg.Capacity - s.used
	s.mu.Unlock()
	return storage.Version{
		MaxImmutableShareSize:                   free,
		MaxMutableShareSize:                     MaxMutableShareSize,
		AvailableSpace:                          free,
		ApplicationVersion:                      s.cfg.Version,
		ToleratesImmutableReadOverrun:           true,
		DeleteMutableSharesWithZeroLengthWritev: true,
		FillsHolesWithZeroBytes:                 true,
		PreventsReadPastEndOfShareData:          true,
	}
}

// Allocate starts uploads of shares of si. A complete share is reported in
// have; a share another upload is still writing is in neither list, as in
// Tahoe (over both protocols, even with the same upload secret).
func (s *Store) Allocate(si storage.Index, shares []storage.ShareNum, size uint64, secret []byte) (have, allocated []storage.ShareNum) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range shares {
		if _, ok := s.complete[si][n]; ok {
			have = append(have, n)
			continue
		}
		if _, ok := s.uploads[si][n]; ok {
			continue
		}
		if size > s.cfg.Capacity-s.used {
			continue
		}
		s.used += size
		if s.uploads[si] == nil {
			s.uploads[si] = make(map[storage.ShareNum]*upload)
		}
		s.uploads[si][n] = &upload{size: size, secret: bytes.Clone(secret)}
		allocated = append(allocated, n)
	}
	if len(have)+len(allocated) > 0 {
		s.leases[si]++
	}
	slices.Sort(have)
	slices.Sort(allocated)
	return have, allocated
}

func (s *Store) uploadLocked(si storage.Index, n storage.ShareNum, secret []byte, check bool) (*upload, error) {
	u := s.uploads[si][n]
	if u == nil {
		if _, ok := s.complete[si][n]; ok {
			return nil, refuse(405, "builtins.ValueError", "share %d of %s is already complete", n, si)
		}
		return nil, refuse(404, "builtins.KeyError", "no upload of share %d of %s", n, si)
	}
	if check && !bytes.Equal(u.secret, secret) {
		return nil, refuse(401, "builtins.ValueError", "wrong upload secret")
	}
	return u, nil
}

// Write stores data at offset of an upload. It reports whether the share
// is now complete (and then finishes it) and the ranges still missing.
// check says whether secret must match the upload's (HTTPS), where the
// write that completes the share also finishes it.
func (s *Store) Write(si storage.Index, n storage.ShareNum, offset uint64, data []byte, secret []byte, check bool) (done bool, missing []span, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.uploadLocked(si, n, secret, check)
	if err != nil {
		return false, nil, err
	}
	end := offset + uint64(len(data))
	if end < offset || end > u.size {
		return false, nil, refuse(500, "allmydata.storage.common.DataTooLargeError", "write of %d bytes at %d past the allocated %d", len(data), offset, u.size)
	}
	if u.data == nil {
		u.data = s.buffer(u.size) // the whole share at once, as a file would be
	}
	for _, w := range u.written {
		lo, hi := max(w.begin, offset), min(w.end, end)
		if lo < hi && !bytes.Equal(u.data[lo:hi], data[lo-offset:hi-offset]) {
			return false, nil, refuse(409, "allmydata.interfaces.ConflictingWriteError", "write at %d conflicts with data already written", offset)
		}
	}
	copy(u.data[offset:], data)
	if len(data) > 0 {
		u.written = addSpan(u.written, span{offset, end})
	}
	missing = u.missing()
	if len(missing) == 0 && check {
		s.finishLocked(si, n, u) // HTTPS has no close: the last write finishes
	}
	return len(missing) == 0, missing, nil
}

// Finish turns a fully written upload into a complete share (the Foolscap
// side's close).
func (s *Store) Finish(si storage.Index, n storage.ShareNum) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.uploadLocked(si, n, nil, false)
	if err != nil {
		return err
	}
	if len(u.missing()) > 0 {
		return refuse(400, "builtins.ValueError", "share %d of %s: %v", n, si, storage.ErrIncomplete)
	}
	s.finishLocked(si, n, u)
	return nil
}

func (s *Store) finishLocked(si storage.Index, n storage.ShareNum, u *upload) {
	delete(s.uploads[si], n)
	if len(s.uploads[si]) == 0 {
		delete(s.uploads, si)
	}
	if s.complete[si] == nil {
		s.complete[si] = make(map[storage.ShareNum][]byte)
	}
	s.complete[si][n] = u.data[:u.size:u.size]
}

// Abort abandons an upload.
func (s *Store) Abort(si storage.Index, n storage.ShareNum, secret []byte, check bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, err := s.uploadLocked(si, n, secret, check)
	if err != nil {
		return err
	}
	s.used -= u.size
	delete(s.uploads[si], n)
	return nil
}

func (u *upload) missing() []span {
	var out []span
	var at uint64
	for _, w := range u.written {
		if w.begin > at {
			out = append(out, span{at, w.begin})
		}
		at = w.end
	}
	if at < u.size {
		out = append(out, span{at, u.size})
	}
	return out
}

func addSpan(spans []span, n span) []span {
	spans = append(spans, n)
	slices.SortFunc(spans, func(a, b span) int {
		switch {
		case a.begin < b.begin:
			return -1
		case a.begin > b.begin:
			return 1
		}
		return 0
	})
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.begin <= last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// Shares lists the complete immutable shares of si.
func (s *Store) Shares(si storage.Index) []storage.ShareNum {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.ShareNum
	for n := range s.complete[si] {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Read reads a complete immutable share, cut at its end.
func (s *Store) Read(si storage.Index, n storage.ShareNum, offset, length uint64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, ok := s.complete[si][n]
	if !ok {
		return nil, refuse(404, "builtins.KeyError", "no share %d of %s", n, si)
	}
	return cutRead(data, offset, length), nil
}

// Length returns the length of a complete immutable share, or of a mutable
// one if mutable.
func (s *Store) Length(kind storage.ShareKind, si storage.Index, n storage.ShareNum) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var data []byte
	var ok bool
	if kind == storage.Mutable {
		if sl := s.slots[si]; sl != nil {
			data, ok = sl.shares[n]
		}
	} else {
		data, ok = s.complete[si][n]
	}
	return uint64(len(data)), ok
}

func cutRead(data []byte, offset, length uint64) []byte {
	if offset >= uint64(len(data)) {
		return []byte{}
	}
	end := min(uint64(len(data)), offset+length)
	if end < offset {
		end = uint64(len(data))
	}
	return bytes.Clone(data[offset:end])
}

// MutableShares lists the mutable shares of si.
func (s *Store) MutableShares(si storage.Index) []storage.ShareNum {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.ShareNum
	if sl := s.slots[si]; sl != nil {
		for n := range sl.shares {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// ReadMutable reads the vectors from the named mutable shares (all if
// shares is empty); shares the store does not hold are left out.
func (s *Store) ReadMutable(si storage.Index, shares []storage.ShareNum, readv []storage.ReadVector) map[storage.ShareNum][][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[storage.ShareNum][][]byte)
	sl := s.slots[si]
	if sl == nil {
		return out
	}
	if len(shares) == 0 {
		for n := range sl.shares {
			shares = append(shares, n)
		}
	}
	for _, n := range shares {
		data, ok := sl.shares[n]
		if !ok {
			continue
		}
		out[n] = readVectors(data, readv)
	}
	return out
}

func readVectors(data []byte, readv []storage.ReadVector) [][]byte {
	r := make([][]byte, len(readv))
	for i, v := range readv {
		r[i] = cutRead(data, v.Offset, v.Size)
	}
	return r
}

// TestAndWrite is slot_testv_and_readv_and_writev, atomically: the write
// enabler is checked (and recorded by the first write), the reads of every
// existing share are taken before any write, and the writes are applied
// only if every test passed.
func (s *Store) TestAndWrite(si storage.Index, we storage.Secret, tw map[storage.ShareNum]storage.TestWrite, readv []storage.ReadVector) (bool, map[storage.ShareNum][][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slots[si]
	if sl != nil && sl.we != we {
		return false, nil, refuse(401, "allmydata.interfaces.BadWriteEnablerError", "The write enabler was recorded by nodeid 'memstore'.")
	}
	reads := make(map[storage.ShareNum][][]byte)
	if sl != nil {
		for n, data := range sl.shares {
			reads[n] = readVectors(data, readv)
		}
	}
	for n, t := range tw {
		var data []byte
		if sl != nil {
			data = sl.shares[n]
		}
		for _, tv := range t.Tests {
			if !bytes.Equal(cutRead(data, tv.Offset, tv.Size), tv.Specimen) {
				return false, reads, nil
			}
		}
	}
	for n, t := range tw {
		if len(t.Writes) == 0 && t.NewLength == nil {
			continue
		}
		if sl == nil {
			sl = &slot{we: we, shares: make(map[storage.ShareNum][]byte)}
			s.slots[si] = sl
		}
		data := sl.shares[n]
		for _, w := range t.Writes {
			end := w.Offset + uint64(len(w.Data))
			if end > MaxMutableShareSize {
				return false, reads, refuse(500, "allmydata.storage.common.DataTooLargeError", "mutable write past %d", uint64(MaxMutableShareSize))
			}
			if uint64(len(data)) < end {
				data = append(data, make([]byte, end-uint64(len(data)))...)
			}
			copy(data[w.Offset:], w.Data)
		}
		if t.NewLength != nil && *t.NewLength < uint64(len(data)) {
			data = data[:*t.NewLength]
		}
		if t.NewLength != nil && *t.NewLength == 0 {
			delete(sl.shares, n)
			continue
		}
		sl.shares[n] = data
	}
	s.leases[si]++
	return true, reads, nil
}

// AddLease renews the lease on every share of si; it reports whether there
// were any.
func (s *Store) AddLease(si storage.Index) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.complete[si]) == 0 && (s.slots[si] == nil || len(s.slots[si].shares) == 0) {
		return false
	}
	s.leases[si]++
	return true
}

// Leases returns how often leases on si were added or renewed.
func (s *Store) Leases(si storage.Index) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leases[si]
}

// Advise records a corruption advisory; it reports whether the share exists.
func (s *Store) Advise(kind storage.ShareKind, si storage.Index, n storage.ShareNum, reason string) bool {
	_, ok := s.Length(kind, si, n)
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advice = append(s.advice, Advice{Kind: kind, Index: si, Share: n, Reason: reason})
	return true
}

// Advisories returns the advisories received so far.
func (s *Store) Advisories() []Advice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.advice)
}

// Drop forgets every immutable share of si, complete or uploading, and
// frees their space (benchmarks keep memory flat with it).
func (s *Store) Drop(si storage.Index) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.complete[si] {
		s.used -= uint64(len(d))
		s.keepSpare(d)
	}
	for _, u := range s.uploads[si] {
		s.used -= u.size
		s.keepSpare(u.data)
	}
	delete(s.complete, si)
	delete(s.uploads, si)
}

// buffer returns n bytes for a share: a dropped share's buffer of that size
// if there is one (its bytes are all overwritten before the share can be
// read), else new memory.
func (s *Store) buffer(n uint64) []byte {
	for i, b := range s.spare {
		if uint64(len(b)) == n {
			s.spare = slices.Delete(s.spare, i, i+1)
			return b
		}
	}
	return make([]byte, n)
}

func (s *Store) keepSpare(b []byte) {
	if len(b) >= 1<<20 && len(s.spare) < 4 {
		s.spare = append(s.spare, b[:cap(b)])
	}
}
