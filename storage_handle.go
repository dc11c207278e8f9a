package tubfarm

import (
	"context"

	"github.com/tubfarm/tubfarm/storage"
)

// storageSession is a session that offers the typed storage API: both the
// Foolscap and the HTTPS session do.
type storageSession interface {
	Storage() storage.Server
}

// serverStorage is Server.Storage: each call takes the live session of the
// moment.
type serverStorage struct{ s *Server }

func (h *serverStorage) current() (storage.Server, error) {
	sess, err := h.s.b.ab.Session(h.s.id)
	if err != nil {
		return nil, err
	}
	ss, ok := sess.(storageSession)
	if !ok {
		return nil, &storage.ConnError{Op: "storage", Protocol: "unknown", Err: ErrNotFoolscap}
	}
	return ss.Storage(), nil
}

func (h *serverStorage) Protocol() string {
	return h.s.Status().Protocol
}

func (h *serverStorage) GetVersion(ctx context.Context) (storage.Version, error) {
	s, err := h.current()
	if err != nil {
		return storage.Version{}, err
	}
	return s.GetVersion(ctx)
}

func (h *serverStorage) AllocateBuckets(ctx context.Context, si storage.Index, lease storage.LeaseSecrets, shares []storage.ShareNum, size uint64) (storage.Allocation, error) {
	s, err := h.current()
	if err != nil {
		return storage.Allocation{}, err
	}
	return s.AllocateBuckets(ctx, si, lease, shares, size)
}

func (h *serverStorage) GetBuckets(ctx context.Context, si storage.Index) (map[storage.ShareNum]storage.BucketReader, error) {
	s, err := h.current()
	if err != nil {
		return nil, err
	}
	return s.GetBuckets(ctx, si)
}

func (h *serverStorage) SlotReadv(ctx context.Context, si storage.Index, shares []storage.ShareNum, readv []storage.ReadVector) (map[storage.ShareNum][][]byte, error) {
	s, err := h.current()
	if err != nil {
		return nil, err
	}
	return s.SlotReadv(ctx, si, shares, readv)
}

func (h *serverStorage) SlotTestvAndReadvAndWritev(ctx context.Context, si storage.Index, secrets storage.WriteSecrets, tw map[storage.ShareNum]storage.TestWrite, readv []storage.ReadVector) (bool, map[storage.ShareNum][][]byte, error) {
	s, err := h.current()
	if err != nil {
		return false, nil, err
	}
	return s.SlotTestvAndReadvAndWritev(ctx, si, secrets, tw, readv)
}

func (h *serverStorage) AddLease(ctx context.Context, si storage.Index, lease storage.LeaseSecrets) error {
	s, err := h.current()
	if err != nil {
		return err
	}
	return s.AddLease(ctx, si, lease)
}

func (h *serverStorage) AdviseCorruptShare(ctx context.Context, kind storage.ShareKind, si storage.Index, n storage.ShareNum, reason string) error {
	s, err := h.current()
	if err != nil {
		return err
	}
	return s.AdviseCorruptShare(ctx, kind, si, n, reason)
}
