// Package foolscap speaks Foolscap 21.7's wire protocol, the TLS-based RPC
// that Tahoe-LAFS nodes use: connection negotiation, the Banana
// serialization and the PB (remote reference) layer.
//
// # Connecting
//
// [Dial] connects to a Tub given its TubID (from a FURL) and a list of
// [Target]s, connection hints already parsed by the caller. All targets are
// dialed at once and the first to complete negotiation wins, as Foolscap's
// TubConnector does. Negotiation (docs/foolscap-protocol.md §3) is: a plaintext
// "GET /id/<tubid>" upgrade answered by "101 Switching Protocols", a TLS
// handshake in which both sides present certificates and the server's is
// pinned to the TubID, hello blocks, and a decision block sent by the
// master (the side with the greater TubID). Dial then starts the PB layer
// ([NewConn]) and returns a [*Conn] and a [*ConnectInfo] with per-hint
// statuses worded as Foolscap words them, the winning hint, the role, the
// TLS version and per-phase timings.
//
// Failures are [*NegotiationError] values naming the hint and the [Phase];
// their causes include [*RemoteNegotiationError] (the peer's own report,
// e.g. "Duplicate connection", which matches [ErrDuplicateConnection]),
// *tubtls.MismatchError ("wrong tubid": the certificate does not match the
// FURL), [ErrWrongTubID], [ErrBlockTooLong], [*BlockError] and context
// errors. Every blocking step honours the context down to the socket.
//
// # Serving
//
// A [Tub] is an identity with a registry of objects by name (swissnum);
// [Tub.Register] returns FURLs. A [Listener] accepts connections for one or
// more Tubs on one socket, dispatching on the upgrade request's TubID,
// runs the server side of negotiation (including Foolscap's
// duplicate-connection rules, §3.5) and serves each connection with the
// PB layer bound to the Tub's registry.
//
// docs/foolscap-protocol.md records what Foolscap 21.7 does on the wire, which
// this package follows; a bare §N.N in this package's comments and test
// names is a section of that page. docs/foolscap.md describes the package.
package foolscap
