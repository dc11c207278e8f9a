// Package storage is the typed storage API of a Tahoe-LAFS storage server,
// the same over both of Tahoe's storage protocols: Foolscap
// (RIStorageServer, implemented here by [NewFoolscap]) and HTTPS storage
// (package httpstorage).
//
// A [Server] offers the calls of Tahoe's IStorageServer: [Server.GetVersion],
// [Server.AllocateBuckets] (which hands out a [BucketWriter] per share),
// [Server.GetBuckets] (a [BucketReader] per share), [Server.SlotReadv],
// [Server.SlotTestvAndReadvAndWritev], [Server.AddLease] and
// [Server.AdviseCorruptShare]. Storage indexes, share numbers and secrets
// are types of their own; every call takes a context and every size is
// bounded (see [MaxChunk] and [MaxReadLength]).
//
// Errors tell three things apart: the server answered and refused
// ([*ServerError]), the server answered something the protocol does not
// allow or that is over a cap ([*ProtocolError]), and the connection failed
// (any other error, wrapped in a [*ConnError]). docs/storage.md describes
// the API, the two protocols and where they differ.
package storage
