// Package actors is tubfarm's supervised broker: it keeps one connection,
// each with its own ephemeral Tub identity, to every storage server it is
// given, and reconnects with backoff when a connection fails or is lost.
//
// # Structure
//
// A [Broker] runs a protoactor-go actor system with one broker actor (a root
// actor) and, under it, one server actor per server, named after the
// server's ID. The broker actor owns the server set: [Broker.Apply] hands it
// a new set and it acts on the difference, decided by
// [messages.ServerSpec.SameConnection]. A server actor owns its server's
// connection: it makes identities (according to [IdentityPolicy]), runs
// each attempt through the
// application's [Connector] in a goroutine bounded by a context it cancels
// when it stops, takes the result back as a message, asks the new session
// for get_version, watches the session, and schedules retries with
// [Backoff] using timers and generation counters (never protoactor's
// receive timeouts or repeating scheduler, which race in the protoactor
// version in use).
//
// # States
//
// Each server is in one [State] (Idle, Connecting, Connected,
// WaitingToRetry, Stopped). One transition point records the state, the
// server's [Status] snapshot and the per-state gauge together, and
// publishes a [messages.StateChanged] event to subscribers. The rules, with
// the trigger of every transition, are in docs/state-machine.md.
//
// The children need not be storage servers: [Config.Kind] names them in
// metrics and logs, so another kind of peer (introducers) runs the same
// lifecycle in a Broker of its own.
//
// # Supervision
//
// A panic in a server actor (or in the Connector or Session code it runs,
// which is recovered in the attempt goroutine and re-raised on the actor's
// mailbox) restarts that actor alone, after a delay from
// Config.RestartBackoff that grows with consecutive panics; its backoff
// counters and PerServer identity survive the restart, its session does
// not. A panic in the broker actor restarts it, which stops every server
// actor; the new incarnation rebuilds them all from the server set the
// Broker keeps.
//
// # Observability
//
// [Broker.Servers] returns snapshots with Tahoe-LAFS's Welcome-page fields
// and more (backoff, next attempt, attempts, last failure, TubID and its
// age). [Broker.Subscribe] delivers StateChanged events through a bounded
// channel that never stalls the broker. Metrics, registered only with the
// Registerer passed to [WithRegisterer], are described in docs/metrics.md.
//
// The package does not import the Foolscap implementation or the
// configuration loader: the application supplies the Connector and the
// server specs.
package actors
