// Package introducer is the client side of Tahoe-LAFS's introducer
// protocol (version 2, over Foolscap): it checks an introducer's version,
// subscribes to the "storage" service with a subscriber object that serves
// announce_v2, and decides, announcement by announcement, what one
// introducer may add to the node's view of the grid.
//
// The rules are Tahoe's, made strict and bounded (docs/introducers.md):
//
//   - only announcements signed with Ed25519 by the key they name are
//     accepted (unsigned ones are counted, never used);
//   - per introducer, one announcement per server key: an equal one is a
//     duplicate, a different one needs a strictly greater seqnum;
//   - an introducer's cache seeds its table at start, so a replay of an
//     older announcement after a restart is refused (Tahoe forgets seqnums
//     and accepts it);
//   - across introducers ([Seqnums]), an announcement older than one
//     another introducer or cache holds is kept as that introducer's but
//     marked Superseded: the merge never uses it, so a replay through
//     another introducer cannot roll a server back;
//   - services other than "storage" are ignored;
//   - every size is capped by [Limits]: announcements per call, servers per
//     introducer, message size, JSON nesting, nickname size, hints per FURL.
//
// Every offer ends in one [Result], which callers count.
//
// The package knows nothing of actors or files: the caller dials the
// introducer, hands over the reference, and writes the accepted entries
// ([Table.Entries]) wherever it keeps them.
package introducer
