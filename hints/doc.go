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
package hints
