package grid

import (
	"context"
	"sync/atomic"

	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/internal/memstore"
)

// storage is a server's RIStorageServer object: the memstore's, which
// answers every storage method from the server's Store, plus "echo" for
// tests, and a count of the calls it answered.
type storage struct {
	foolscap.Referenceable
	store *memstore.Store
	nick  string
	calls atomic.Int64
}

func (s *storage) CallRemote(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	s.calls.Add(1)
	return s.Referenceable.CallRemote(ctx, method, args, kwargs)
}

// extra answers the methods RIStorageServer does not have.
func (s *storage) extra(_ context.Context, method string, args []any) (any, error, bool) {
	if method == "echo" {
		if len(args) == 1 {
			return args[0], nil, true
		}
		return foolscap.Tuple(args), nil, true
	}
	return nil, nil, false
}
