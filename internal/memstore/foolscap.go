package memstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/storage"
)

// Interface names of Tahoe's storage objects.
const (
	StorageInterface = "RIStorageServer.tahoe.allmydata.com"
	WriterInterface  = "RIBucketWriter.tahoe.allmydata.com"
	ReaderInterface  = "RIBucketReader.tahoe.allmydata.com"
)

// Foolscap returns the store as a Foolscap RIStorageServer object. extra,
// if set, answers methods that RIStorageServer does not have (tests use it
// for an "echo").
func (s *Store) Foolscap(extra func(ctx context.Context, method string, args []any) (any, error, bool)) foolscap.Referenceable {
	return &fsStorage{s: s, extra: extra}
}

type fsStorage struct {
	s     *Store
	extra func(ctx context.Context, method string, args []any) (any, error, bool)
}

func (*fsStorage) InterfaceName() string { return StorageInterface }

// argError is the failure Foolscap sends for arguments that break the
// remote interface's schema.
func argError(method, format string, args ...any) error {
	return &foolscap.RemoteError{Type: "foolscap.tokens.Violation", Value: fmt.Sprintf("%s: %s", method, fmt.Sprintf(format, args...))}
}

func failure(err error) error {
	var r *Refusal
	if errors.As(err, &r) {
		return &foolscap.RemoteError{Type: r.Type, Value: r.Msg}
	}
	return err
}

func (f *fsStorage) CallRemote(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	a := &argReader{method: method, args: args}
	s := f.s
	switch method {
	case "get_version":
		return storage.VersionToFoolscap(s.Version()), nil
	case "allocate_buckets":
		si := a.index()
		a.secret()
		a.secret()
		shares := a.shareList()
		size := a.uint()
		if a.err != nil {
			return nil, a.err
		}
		have, alloc := s.Allocate(si, shares, size, nil)
		haveSet := foolscap.Set{}
		for _, n := range have {
			haveSet = append(haveSet, int64(n))
		}
		writers := foolscap.Dict{}
		for _, n := range alloc {
			writers = append(writers, foolscap.DictItem{Key: int64(n), Value: &fsWriter{s: s, si: si, n: n}})
		}
		return foolscap.Tuple{haveSet, writers}, nil
	case "get_buckets":
		si := a.index()
		if a.err != nil {
			return nil, a.err
		}
		readers := foolscap.Dict{}
		for _, n := range s.Shares(si) {
			readers = append(readers, foolscap.DictItem{Key: int64(n), Value: &fsReader{s: s, si: si, n: n}})
		}
		return readers, nil
	case "slot_readv":
		si := a.index()
		shares := a.shareList()
		readv := a.readv()
		if a.err != nil {
			return nil, a.err
		}
		return readData(s.ReadMutable(si, shares, readv)), nil
	case "slot_testv_and_readv_and_writev":
		si := a.index()
		we := a.secrets()
		tw := a.testWrites()
		readv := a.readv()
		if a.err != nil {
			return nil, a.err
		}
		ok, reads, err := s.TestAndWrite(si, we, tw, readv)
		if err != nil {
			return nil, failure(err)
		}
		return foolscap.Tuple{ok, readData(reads)}, nil
	case "add_lease":
		si := a.index()
		a.secret()
		a.secret()
		if a.err != nil {
			return nil, a.err
		}
		s.AddLease(si)
		return nil, nil
	case "advise_corrupt_share":
		kind := storage.ShareKind(a.text())
		si := a.index()
		n := a.shareNum()
		reason := a.text()
		if a.err != nil {
			return nil, a.err
		}
		if kind != storage.Immutable && kind != storage.Mutable {
			return nil, argError(method, "share type %q", kind)
		}
		s.Advise(kind, si, n, reason)
		return nil, nil
	}
	if f.extra != nil {
		if v, err, ok := f.extra(ctx, method, args); ok {
			return v, err
		}
	}
	return nil, foolscap.UnknownMethod(StorageInterface, method)
}

func readData(m map[storage.ShareNum][][]byte) foolscap.Dict {
	d := foolscap.Dict{}
	for n, reads := range m {
		l := make([]any, len(reads))
		for i, r := range reads {
			l[i] = r
		}
		d = append(d, foolscap.DictItem{Key: int64(n), Value: l})
	}
	return d
}

type fsWriter struct {
	s  *Store
	si storage.Index
	n  storage.ShareNum
}

func (*fsWriter) InterfaceName() string { return WriterInterface }

func (w *fsWriter) CallRemote(_ context.Context, method string, args []any, _ map[string]any) (any, error) {
	a := &argReader{method: method, args: args}
	switch method {
	case "write":
		off := a.uint()
		data := a.bytes()
		if a.err != nil {
			return nil, a.err
		}
		_, _, err := w.s.Write(w.si, w.n, off, data, nil, false)
		return nil, failure(err)
	case "close":
		return nil, failure(w.s.Finish(w.si, w.n))
	case "abort":
		return nil, failure(w.s.Abort(w.si, w.n, nil, false))
	}
	return nil, foolscap.UnknownMethod(WriterInterface, method)
}

type fsReader struct {
	s  *Store
	si storage.Index
	n  storage.ShareNum
}

func (*fsReader) InterfaceName() string { return ReaderInterface }

func (r *fsReader) CallRemote(_ context.Context, method string, args []any, _ map[string]any) (any, error) {
	a := &argReader{method: method, args: args}
	switch method {
	case "read":
		off := a.uint()
		n := a.uint()
		if a.err != nil {
			return nil, a.err
		}
		if n > 1<<31 {
			return nil, argError(method, "length %d", n)
		}
		data, err := r.s.Read(r.si, r.n, off, n)
		if err != nil {
			return nil, failure(err)
		}
		return data, nil
	case "advise_corrupt_share":
		reason := a.text()
		if a.err != nil {
			return nil, a.err
		}
		r.s.Advise(storage.Immutable, r.si, r.n, reason)
		return nil, nil
	}
	return nil, foolscap.UnknownMethod(ReaderInterface, method)
}

// argReader takes positional arguments one at a time and records the first
// that does not fit the schema.
type argReader struct {
	method string
	args   []any
	i      int
	err    error
}

func (a *argReader) next(what string) any {
	if a.err != nil {
		return nil
	}
	if a.i >= len(a.args) {
		a.err = argError(a.method, "missing %s", what)
		return nil
	}
	v := a.args[a.i]
	a.i++
	return v
}

func (a *argReader) fail(format string, args ...any) {
	if a.err == nil {
		a.err = argError(a.method, format, args...)
	}
}

func (a *argReader) bytes() []byte {
	v := a.next("bytes")
	b, ok := v.([]byte)
	if !ok && a.err == nil {
		a.fail("argument %d is %T, not bytes", a.i, v)
	}
	return b
}

func (a *argReader) text() string {
	switch x := a.next("text").(type) {
	case []byte:
		return string(x)
	case string:
		return x
	default:
		a.fail("argument %d is %T, not text", a.i, x)
	}
	return ""
}

func (a *argReader) index() storage.Index {
	var si storage.Index
	b := a.bytes()
	if a.err == nil && len(b) != len(si) {
		a.fail("storage index of %d bytes", len(b))
	}
	copy(si[:], b)
	return si
}

func (a *argReader) secret() storage.Secret {
	var s storage.Secret
	b := a.bytes()
	if a.err == nil && len(b) != len(s) {
		a.fail("secret of %d bytes", len(b))
	}
	copy(s[:], b)
	return s
}

func (a *argReader) uint() uint64 {
	v := a.next("integer")
	n, ok := v.(int64)
	if (!ok || n < 0) && a.err == nil {
		a.fail("argument %d is %v, not a non-negative integer", a.i, v)
	}
	return uint64(n)
}

func toShareNum(v any) (storage.ShareNum, bool) {
	n, ok := v.(int64)
	if !ok || n < 0 || n >= storage.MaxShares {
		return 0, false
	}
	return storage.ShareNum(n), true
}

func (a *argReader) shareNum() storage.ShareNum {
	v := a.next("share number")
	n, ok := toShareNum(v)
	if !ok {
		a.fail("bad share number %v", v)
	}
	return n
}

func items(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case foolscap.Tuple:
		return x, true
	case foolscap.Set:
		return x, true
	case foolscap.FrozenSet:
		return x, true
	}
	return nil, false
}

func (a *argReader) shareList() []storage.ShareNum {
	v := a.next("share numbers")
	l, ok := items(v)
	if !ok || len(l) > storage.MaxShares {
		a.fail("bad share numbers %T", v)
		return nil
	}
	out := []storage.ShareNum{}
	for _, x := range l {
		n, ok := toShareNum(x)
		if !ok {
			a.fail("bad share number %v", x)
			return nil
		}
		out = append(out, n)
	}
	return out
}

func (a *argReader) readv() []storage.ReadVector {
	v := a.next("read vector")
	l, ok := items(v)
	if !ok || len(l) > storage.MaxVectors {
		a.fail("bad read vector")
		return nil
	}
	out := make([]storage.ReadVector, 0, len(l))
	for _, x := range l {
		t, ok := items(x)
		if !ok || len(t) != 2 {
			a.fail("bad read vector element")
			return nil
		}
		sub := &argReader{method: a.method, args: t}
		rv := storage.ReadVector{Offset: sub.uint(), Size: sub.uint()}
		if sub.err != nil {
			a.err = sub.err
			return nil
		}
		out = append(out, rv)
	}
	return out
}

func (a *argReader) secrets() storage.Secret {
	v := a.next("secrets")
	t, ok := items(v)
	if !ok || len(t) != 3 {
		a.fail("secrets are not a triple")
		return storage.Secret{}
	}
	sub := &argReader{method: a.method, args: t}
	we := sub.secret()
	sub.secret()
	sub.secret()
	if sub.err != nil {
		a.err = sub.err
	}
	return we
}

func (a *argReader) testWrites() map[storage.ShareNum]storage.TestWrite {
	v := a.next("test and write vectors")
	d, ok := v.(foolscap.Dict)
	if !ok || len(d) > storage.MaxShares {
		a.fail("test and write vectors are %T", v)
		return nil
	}
	out := make(map[storage.ShareNum]storage.TestWrite, len(d))
	for _, it := range d {
		n, ok := toShareNum(it.Key)
		t, ok2 := items(it.Value)
		if !ok || !ok2 || len(t) != 3 {
			a.fail("bad test and write vector for %v", it.Key)
			return nil
		}
		var tw storage.TestWrite
		tests, ok := items(t[0])
		if !ok || len(tests) > storage.MaxVectors {
			a.fail("bad test vector")
			return nil
		}
		for _, x := range tests {
			e, ok := items(x)
			if !ok || len(e) != 4 {
				a.fail("bad test vector element")
				return nil
			}
			sub := &argReader{method: a.method, args: e}
			tv := storage.TestVector{Offset: sub.uint(), Size: sub.uint()}
			op := sub.text()
			tv.Specimen = sub.bytes()
			if sub.err == nil && op != "eq" {
				sub.fail("test operator %q: only eq is supported", op)
			}
			if sub.err != nil {
				a.err = sub.err
				return nil
			}
			tw.Tests = append(tw.Tests, tv)
		}
		writes, ok := items(t[1])
		if !ok {
			a.fail("bad write vector")
			return nil
		}
		for _, x := range writes {
			e, ok := items(x)
			if !ok || len(e) != 2 {
				a.fail("bad write vector element")
				return nil
			}
			sub := &argReader{method: a.method, args: e}
			wv := storage.WriteVector{Offset: sub.uint(), Data: sub.bytes()}
			if sub.err != nil {
				a.err = sub.err
				return nil
			}
			tw.Writes = append(tw.Writes, wv)
		}
		if t[2] != nil {
			sub := &argReader{method: a.method, args: t[2:]}
			nl := sub.uint()
			if sub.err != nil {
				a.err = sub.err
				return nil
			}
			tw.NewLength = &nl
		}
		out[n] = tw
	}
	return out
}
