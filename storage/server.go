package storage

import "context"

// Server is one storage server, whichever protocol reaches it. Its methods
// are safe for concurrent use. Each honours ctx: when ctx ends the call
// returns a [*ConnError] wrapping ctx's error.
type Server interface {
	// Protocol names the protocol: "foolscap" or "https".
	Protocol() string

	// GetVersion returns what the server says about itself.
	GetVersion(ctx context.Context) (Version, error)

	// AllocateBuckets asks the server to accept shares of si, each
	// allocatedSize bytes long.
	AllocateBuckets(ctx context.Context, si Index, lease LeaseSecrets, shares []ShareNum, allocatedSize uint64) (Allocation, error)

	// GetBuckets returns a reader for each complete immutable share of si
	// the server holds (none, and no error, if it holds none).
	GetBuckets(ctx context.Context, si Index) (map[ShareNum]BucketReader, error)

	// SlotReadv reads the vectors from each named mutable share of si
	// (every share if shares is empty). A named share the server does not
	// hold is left out of the result, over both protocols.
	SlotReadv(ctx context.Context, si Index, shares []ShareNum, readv []ReadVector) (map[ShareNum][][]byte, error)

	// SlotTestvAndReadvAndWritev tests, reads and writes mutable shares
	// of si atomically (see [TestWrite]). It reports whether the writes
	// were applied, and the reads of every share that existed before.
	SlotTestvAndReadvAndWritev(ctx context.Context, si Index, secrets WriteSecrets, tw map[ShareNum]TestWrite, readv []ReadVector) (bool, map[ShareNum][][]byte, error)

	// AddLease adds or renews a lease on every share of si; a server with
	// no share of si does nothing.
	AddLease(ctx context.Context, si Index, lease LeaseSecrets) error

	// AdviseCorruptShare tells the server that share n of si looks
	// corrupt. A server that does not hold it ignores the advice.
	AdviseCorruptShare(ctx context.Context, kind ShareKind, si Index, n ShareNum, reason string) error
}

// BucketWriter uploads one immutable share.
type BucketWriter interface {
	// Write stores data at offset. Writes may come in any order but must
	// not overlap with different bytes, nor go past the allocated size.
	Write(ctx context.Context, offset uint64, data []byte) error
	// Close finishes the share. Every allocated byte must have been
	// written ([ErrIncomplete] otherwise).
	Close(ctx context.Context) error
	// Abort abandons the share and what was written of it.
	Abort(ctx context.Context) error
}

// BucketReader reads one complete immutable share.
type BucketReader interface {
	// Read returns up to length bytes at offset, fewer at the end of the
	// share and none past it. length is at most [MaxReadLength].
	Read(ctx context.Context, offset, length uint64) ([]byte, error)
	// AdviseCorrupt tells the server the share looks corrupt.
	AdviseCorrupt(ctx context.Context, reason string) error
}
