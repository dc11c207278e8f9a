package grid

import (
	"context"
	"math/big"
	"sync/atomic"

	"github.com/tubfarm/tubfarm/foolscap"
)

// storage answers get_version the way a Tahoe-LAFS storage server does
// (the shape of docs/foolscap-wire.md §5.4), and any other method with a
// Foolscap-style "method not defined" failure.
type storage struct {
	version string
	nick    string
	calls   atomic.Int64
}

func (s *storage) InterfaceName() string { return StorageInterface }

func (s *storage) CallRemote(ctx context.Context, method string, args []any, kwargs map[string]any) (any, error) {
	s.calls.Add(1)
	switch method {
	case "get_version":
		maxShare, _ := new(big.Int).SetString("18446744073709551616", 10)
		return foolscap.Dict{
			{Key: []byte("application-version"), Value: []byte(s.version)},
			{Key: []byte(StorageVersionKey), Value: foolscap.Dict{
				{Key: []byte("available-space"), Value: int64(123456789)},
				{Key: []byte("fills-holes-with-zero-bytes"), Value: false},
				{Key: []byte("maximum-immutable-share-size"), Value: maxShare},
				{Key: []byte("maximum-mutable-share-size"), Value: int64(69105000000000000)},
				{Key: []byte("tolerates-immutable-read-overrun"), Value: true},
			}},
		}, nil
	case "echo":
		if len(args) == 1 {
			return args[0], nil
		}
		return foolscap.Tuple(args), nil
	}
	return nil, foolscap.UnknownMethod(StorageInterface, method)
}
