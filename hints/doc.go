// Package hints parses Foolscap FURLs and connection hints exactly as
// Foolscap 21.7 does, and decides, per server, which transport (direct TCP,
// Tor or I2P) may dial each hint under a Tahoe-LAFS style connection policy.
//
// The package has three layers:
//
//   - [ParseFURL] and [FURL.String] implement Foolscap's decode_furl and
//     encode_furl.
//   - [ParseHint] implements Foolscap's legacy-hint conversion and the hint
//     grammars of its tcp, tor and i2p connection handlers.
//   - [Policy] models Tahoe's [connections], [node] reveal-IP-address, [tor]
//     and [i2p] settings plus a per-server servers.yaml "connections:"
//     override, and [Policy.Decide] turns one hint into a [Decision]. A
//     [Dialers] registry then dials a Decision with the matching [DialFunc].
//   - [NewTransports] builds the node's transports from its [tor] and [i2p]
//     settings, and [Transports.ForIdentity] hands out the Dialers for one
//     identity: [Tor] through a SOCKS5 port with per-identity stream
//     isolation credentials, and [SAM], an I2P SAM v3 client with one
//     session (one I2P destination) per identity.
//
// Only direct TCP ([DirectTCP], [DirectTCPWithResolver]) resolves host
// names locally. Tor receives names unresolved and the SAM bridge looks
// them up itself, so with "reveal-IP-address = false" nothing is resolved
// or dialed directly unless a per-server override asks for tcp. (The Tor
// SOCKS port and the SAM bridge are dialed directly; write them as IP
// literals so that not even their names are looked up.)
package hints
