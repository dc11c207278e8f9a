package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"slices"

	"github.com/tubfarm/tubfarm/foolscap"
)

// ProtoFoolscap is the protocol name of the Foolscap implementation.
const ProtoFoolscap = "foolscap"

// VersionKey is the key of the storage protocol's part of a version answer.
const VersionKey = "http://allmydata.org/tahoe/protocols/storage/v1"

// A Caller invokes methods on a remote object: a *foolscap.RemoteRef, or
// a broker's server handle.
type Caller interface {
	Call(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error)
}

// NewFoolscap returns the typed API over root, a reference to a server's
// RIStorageServer object. Bucket writers and readers are the references
// the server hands out in its answers.
func NewFoolscap(root Caller) Server { return &fsServer{root: root} }

type fsServer struct{ root Caller }

func (s *fsServer) Protocol() string { return ProtoFoolscap }

// call runs method on c and sorts its error into the package's three kinds.
func fsCall(ctx context.Context, c Caller, op string, args ...any) (any, error) {
	v, err := c.Call(ctx, op, args, nil)
	if err != nil {
		return nil, fsError(op, err)
	}
	return v, nil
}

const maxErrText = 1000

func fsError(op string, err error) error {
	var re *foolscap.RemoteError
	if errors.As(err, &re) {
		return &ServerError{Op: op, Protocol: ProtoFoolscap, Type: cut(re.Type, 200), Msg: cut(re.Value, maxErrText)}
	}
	var v *foolscap.Violation
	if errors.As(err, &v) {
		return &ProtocolError{Op: op, Protocol: ProtoFoolscap, Err: err}
	}
	return &ConnError{Op: op, Protocol: ProtoFoolscap, Err: err}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func badAnswer(op string, format string, args ...any) error {
	return &ProtocolError{Op: op, Protocol: ProtoFoolscap, Err: fmt.Errorf(format, args...)}
}

func (s *fsServer) GetVersion(ctx context.Context) (Version, error) {
	const op = "get_version"
	v, err := fsCall(ctx, s.root, op)
	if err != nil {
		return Version{}, err
	}
	return VersionFromFoolscap(v)
}

// VersionToFoolscap encodes v as a get_version answer in Foolscap's shape,
// the inverse of VersionFromFoolscap.
func VersionToFoolscap(v Version) foolscap.Dict {
	return foolscap.BytesDict(map[string]any{
		"application-version": []byte(v.ApplicationVersion),
		VersionKey: foolscap.BytesDict(map[string]any{
			"maximum-immutable-share-size":                  v.MaxImmutableShareSize,
			"maximum-mutable-share-size":                    v.MaxMutableShareSize,
			"available-space":                               v.AvailableSpace,
			"tolerates-immutable-read-overrun":              v.ToleratesImmutableReadOverrun,
			"delete-mutable-shares-with-zero-length-writev": v.DeleteMutableSharesWithZeroLengthWritev,
			"fills-holes-with-zero-bytes":                   v.FillsHolesWithZeroBytes,
			"prevents-read-past-end-of-share-data":          v.PreventsReadPastEndOfShareData,
		}),
	})
}

// VersionFromFoolscap decodes a get_version answer received over Foolscap.
func VersionFromFoolscap(v any) (Version, error) {
	const op = "get_version"
	top, ok := v.(foolscap.Dict)
	if !ok {
		return Version{}, badAnswer(op, "answer is %T, not a dict", v)
	}
	var out Version
	if av, ok := top.GetString("application-version"); ok {
		b, ok := textOf(av)
		if !ok {
			return Version{}, badAnswer(op, "application-version is %T", av)
		}
		out.ApplicationVersion = cut(b, 200)
	}
	sv, ok := top.GetString(VersionKey)
	if !ok {
		return Version{}, badAnswer(op, "no %q", VersionKey)
	}
	sd, ok := sv.(foolscap.Dict)
	if !ok {
		return Version{}, badAnswer(op, "%q is %T, not a dict", VersionKey, sv)
	}
	for _, f := range []struct {
		key string
		dst *uint64
	}{
		{"maximum-immutable-share-size", &out.MaxImmutableShareSize},
		{"maximum-mutable-share-size", &out.MaxMutableShareSize},
		{"available-space", &out.AvailableSpace},
	} {
		if x, ok := sd.GetString(f.key); ok {
			n, ok := clampUint(x)
			if !ok {
				return Version{}, badAnswer(op, "%s is %T", f.key, x)
			}
			*f.dst = n
		}
	}
	for _, f := range []struct {
		key string
		dst *bool
	}{
		{"tolerates-immutable-read-overrun", &out.ToleratesImmutableReadOverrun},
		{"delete-mutable-shares-with-zero-length-writev", &out.DeleteMutableSharesWithZeroLengthWritev},
		{"fills-holes-with-zero-bytes", &out.FillsHolesWithZeroBytes},
		{"prevents-read-past-end-of-share-data", &out.PreventsReadPastEndOfShareData},
	} {
		if x, ok := sd.GetString(f.key); ok {
			b, ok := x.(bool)
			if !ok {
				return Version{}, badAnswer(op, "%s is %T", f.key, x)
			}
			*f.dst = b
		}
	}
	return out, nil
}

// clampUint turns a non-negative integer into a uint64, saturating: Tahoe
// reports an unlimited size as 2**64.
func clampUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return 0, false
		}
		return uint64(x), true
	case *big.Int:
		if x.Sign() < 0 {
			return 0, false
		}
		if !x.IsUint64() {
			return math.MaxUint64, true
		}
		return x.Uint64(), true
	}
	return 0, false
}

func textOf(v any) (string, bool) {
	switch x := v.(type) {
	case []byte:
		return string(x), true
	case string:
		return x, true
	}
	return "", false
}

func shareNum(v any) (ShareNum, bool) {
	n, ok := v.(int64)
	if !ok || n < 0 || n >= MaxShares {
		return 0, false
	}
	return ShareNum(n), true
}

// canary is the object allocate_buckets requires; Tahoe's server only
// watches it for disconnection and never calls it.
type canary struct{ _ int }

func (*canary) InterfaceName() string { return "" }
func (*canary) CallRemote(_ context.Context, method string, _ []any, _ map[string]any) (any, error) {
	return nil, foolscap.UnknownMethod("canary", method)
}

func (s *fsServer) AllocateBuckets(ctx context.Context, si Index, lease LeaseSecrets, shares []ShareNum, allocatedSize uint64) (Allocation, error) {
	const op = "allocate_buckets"
	if err := CheckShareNums(op, shares); err != nil {
		return Allocation{}, err
	}
	if allocatedSize > math.MaxInt64 {
		return Allocation{}, ArgError(op, "allocated size %d out of range", allocatedSize)
	}
	set := make(foolscap.Set, len(shares))
	for i, n := range shares {
		set[i] = int64(n)
	}
	v, err := fsCall(ctx, s.root, op, si[:], lease.Renew[:], lease.Cancel[:], set, int64(allocatedSize), &canary{})
	if err != nil {
		return Allocation{}, err
	}
	t, ok := v.(foolscap.Tuple)
	if !ok || len(t) != 2 {
		return Allocation{}, badAnswer(op, "answer is %T, not a pair", v)
	}
	var out Allocation
	have, err := shareList(op, t[0])
	if err != nil {
		return Allocation{}, err
	}
	out.AlreadyHave = have
	refs, err := refDict(op, t[1])
	if err != nil {
		return Allocation{}, err
	}
	out.Writers = make(map[ShareNum]BucketWriter, len(refs))
	for n, r := range refs {
		out.Writers[n] = &fsWriter{ref: r}
	}
	return out, nil
}

// shareList decodes a set (or list) of share numbers.
func shareList(op string, v any) ([]ShareNum, error) {
	var items []any
	switch x := v.(type) {
	case foolscap.Set:
		items = x
	case foolscap.FrozenSet:
		items = x
	case []any:
		items = x
	case foolscap.Tuple:
		items = x
	default:
		return nil, badAnswer(op, "share numbers are %T", v)
	}
	if len(items) > MaxShares {
		return nil, &ProtocolError{Op: op, Protocol: ProtoFoolscap, Err: fmt.Errorf("%d share numbers: %w", len(items), ErrTooLarge)}
	}
	out := make([]ShareNum, 0, len(items))
	for _, it := range items {
		n, ok := shareNum(it)
		if !ok {
			return nil, badAnswer(op, "bad share number %v", it)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func refDict(op string, v any) (map[ShareNum]Caller, error) {
	d, ok := v.(foolscap.Dict)
	if !ok {
		return nil, badAnswer(op, "buckets are %T, not a dict", v)
	}
	if len(d) > MaxShares {
		return nil, &ProtocolError{Op: op, Protocol: ProtoFoolscap, Err: fmt.Errorf("%d buckets: %w", len(d), ErrTooLarge)}
	}
	out := make(map[ShareNum]Caller, len(d))
	for _, it := range d {
		n, ok := shareNum(it.Key)
		if !ok {
			return nil, badAnswer(op, "bad share number %v", it.Key)
		}
		r, ok := it.Value.(*foolscap.RemoteRef)
		if !ok {
			return nil, badAnswer(op, "bucket %d is %T, not a reference", n, it.Value)
		}
		out[n] = r
	}
	return out, nil
}

type fsWriter struct{ ref Caller }

func (w *fsWriter) Write(ctx context.Context, offset uint64, data []byte) error {
	const op = "write"
	if len(data) > MaxWriteLength {
		return ArgError(op, "%d bytes, more than %d", len(data), MaxWriteLength)
	}
	if offset > math.MaxInt64-uint64(len(data)) {
		return ArgError(op, "offset %d out of range", offset)
	}
	for len(data) > 0 {
		n := min(len(data), MaxChunk)
		if _, err := fsCall(ctx, w.ref, op, int64(offset), data[:n]); err != nil {
			return err
		}
		offset += uint64(n)
		data = data[n:]
	}
	return nil
}

func (w *fsWriter) Close(ctx context.Context) error {
	_, err := fsCall(ctx, w.ref, "close")
	return err
}

func (w *fsWriter) Abort(ctx context.Context) error {
	_, err := fsCall(ctx, w.ref, "abort")
	return err
}

func (s *fsServer) GetBuckets(ctx context.Context, si Index) (map[ShareNum]BucketReader, error) {
	const op = "get_buckets"
	v, err := fsCall(ctx, s.root, op, si[:])
	if err != nil {
		return nil, err
	}
	refs, err := refDict(op, v)
	if err != nil {
		return nil, err
	}
	out := make(map[ShareNum]BucketReader, len(refs))
	for n, r := range refs {
		out[n] = &fsReader{ref: r}
	}
	return out, nil
}

type fsReader struct{ ref Caller }

func (r *fsReader) Read(ctx context.Context, offset, length uint64) ([]byte, error) {
	const op = "read"
	if length > MaxReadLength {
		return nil, ArgError(op, "%d bytes, more than %d", length, MaxReadLength)
	}
	if offset > math.MaxInt64-length {
		return nil, ArgError(op, "offset %d out of range", offset)
	}
	var out []byte
	for length > 0 {
		n := min(length, MaxChunk)
		v, err := fsCall(ctx, r.ref, op, int64(offset), int64(n))
		if err != nil {
			return nil, err
		}
		b, ok := v.([]byte)
		if !ok {
			return nil, badAnswer(op, "data is %T, not bytes", v)
		}
		if uint64(len(b)) > n {
			return nil, &ProtocolError{Op: op, Protocol: ProtoFoolscap, Err: fmt.Errorf("%d bytes for a read of %d: %w", len(b), n, ErrTooLarge)}
		}
		if out == nil && uint64(len(b)) == length {
			return b, nil
		}
		out = append(out, b...)
		if uint64(len(b)) < n {
			break
		}
		offset += n
		length -= n
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

func (r *fsReader) AdviseCorrupt(ctx context.Context, reason string) error {
	const op = "advise_corrupt_share"
	if len(reason) == 0 || len(reason) > MaxReasonLength {
		return ArgError(op, "reason of %d bytes: want 1 to %d", len(reason), MaxReasonLength)
	}
	_, err := fsCall(ctx, r.ref, op, []byte(reason))
	return err
}

func readvArg(readv []ReadVector) []any {
	out := make([]any, len(readv))
	for i, r := range readv {
		out[i] = foolscap.Tuple{int64(r.Offset), int64(r.Size)}
	}
	return out
}

func (s *fsServer) SlotReadv(ctx context.Context, si Index, shares []ShareNum, readv []ReadVector) (map[ShareNum][][]byte, error) {
	const op = "slot_readv"
	if err := CheckShareNums(op, shares); err != nil {
		return nil, err
	}
	if err := CheckReadVectors(op, readv); err != nil {
		return nil, err
	}
	sh := make([]any, len(shares))
	for i, n := range shares {
		sh[i] = int64(n)
	}
	v, err := fsCall(ctx, s.root, op, si[:], sh, readvArg(readv))
	if err != nil {
		return nil, err
	}
	return readData(op, v, readv)
}

// readData decodes {shnum: [bytes, ...]} and checks each answer against
// its read vector.
func readData(op string, v any, readv []ReadVector) (map[ShareNum][][]byte, error) {
	d, ok := v.(foolscap.Dict)
	if !ok {
		return nil, badAnswer(op, "answer is %T, not a dict", v)
	}
	if len(d) > MaxShares {
		return nil, &ProtocolError{Op: op, Protocol: ProtoFoolscap, Err: fmt.Errorf("%d shares: %w", len(d), ErrTooLarge)}
	}
	out := make(map[ShareNum][][]byte, len(d))
	for _, it := range d {
		n, ok := shareNum(it.Key)
		if !ok {
			return nil, badAnswer(op, "bad share number %v", it.Key)
		}
		l, ok := it.Value.([]any)
		if !ok || len(l) != len(readv) {
			return nil, badAnswer(op, "share %d: %d reads for %d vectors", n, len(l), len(readv))
		}
		data := make([][]byte, len(l))
		for i, x := range l {
			b, ok := x.([]byte)
			if !ok {
				return nil, badAnswer(op, "share %d: read %d is %T", n, i, x)
			}
			if uint64(len(b)) > readv[i].Size {
				return nil, &ProtocolError{Op: op, Protocol: ProtoFoolscap, Err: fmt.Errorf("share %d: %d bytes for a read of %d: %w", n, len(b), readv[i].Size, ErrTooLarge)}
			}
			data[i] = b
		}
		out[n] = data
	}
	return out, nil
}

func (s *fsServer) SlotTestvAndReadvAndWritev(ctx context.Context, si Index, secrets WriteSecrets, tw map[ShareNum]TestWrite, readv []ReadVector) (bool, map[ShareNum][][]byte, error) {
	const op = "slot_testv_and_readv_and_writev"
	if err := CheckTestWrites(op, tw); err != nil {
		return false, nil, err
	}
	if err := CheckReadVectors(op, readv); err != nil {
		return false, nil, err
	}
	vecs := make(foolscap.Dict, 0, len(tw))
	for _, n := range slices.Sorted(maps.Keys(tw)) {
		t := tw[n]
		tests := make([]any, len(t.Tests))
		for i, tv := range t.Tests {
			tests[i] = foolscap.Tuple{int64(tv.Offset), int64(tv.Size), []byte("eq"), nonNil(tv.Specimen)}
		}
		writes := make([]any, len(t.Writes))
		for i, wv := range t.Writes {
			writes[i] = foolscap.Tuple{int64(wv.Offset), nonNil(wv.Data)}
		}
		var nl any
		if t.NewLength != nil {
			nl = int64(*t.NewLength)
		}
		vecs = append(vecs, foolscap.DictItem{Key: int64(n), Value: foolscap.Tuple{tests, writes, nl}})
	}
	sec := foolscap.Tuple{secrets.WriteEnabler[:], secrets.Renew[:], secrets.Cancel[:]}
	v, err := fsCall(ctx, s.root, op, si[:], sec, vecs, readvArg(readv))
	if err != nil {
		return false, nil, err
	}
	t, ok := v.(foolscap.Tuple)
	if !ok || len(t) != 2 {
		return false, nil, badAnswer(op, "answer is %T, not a pair", v)
	}
	okv, isBool := t[0].(bool)
	if !isBool {
		return false, nil, badAnswer(op, "success is %T", t[0])
	}
	data, err := readData(op, t[1], readv)
	if err != nil {
		return false, nil, err
	}
	return okv, data, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (s *fsServer) AddLease(ctx context.Context, si Index, lease LeaseSecrets) error {
	_, err := fsCall(ctx, s.root, "add_lease", si[:], lease.Renew[:], lease.Cancel[:])
	return err
}

func (s *fsServer) AdviseCorruptShare(ctx context.Context, kind ShareKind, si Index, n ShareNum, reason string) error {
	const op = "advise_corrupt_share"
	if kind != Immutable && kind != Mutable {
		return ArgError(op, "share kind %q", kind)
	}
	if len(reason) == 0 || len(reason) > MaxReasonLength {
		return ArgError(op, "reason of %d bytes: want 1 to %d", len(reason), MaxReasonLength)
	}
	_, err := fsCall(ctx, s.root, op, []byte(kind), si[:], int64(n), []byte(reason))
	return err
}
