// Package tubfarm is a connection manager for Tahoe-LAFS storage grids that
// gives every storage server its own ephemeral Foolscap identity, so that
// colluding servers cannot link one client's connections to each other
// (Tahoe-LAFS ticket #2759).
//
// The packages below it do the work:
//
//   - config reads a Tahoe node directory (tahoe.cfg, introducers.yaml, the
//     introducer caches, servers.yaml, node.pem) and merges it into an
//     immutable server map.
//   - hints parses FURLs and connection hints and decides, per hint, which
//     handler (direct TCP, Tor, I2P) may dial it.
//   - tls (package tubtls) makes Tub identities and TLS configurations.
//   - foolscap speaks the Foolscap 21.7 wire protocol, as client and listener.
//   - actors runs the supervised broker: one actor per storage server.
//
// See docs/architecture.md for how they fit together.
package tubfarm
