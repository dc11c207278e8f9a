// Package bench holds tubfarm's end-to-end benchmarks; it has no API.
//
// The benchmarks measure what docs/performance.md reports, each against an
// anchor measured in the same run, because the machines they run on are
// small and shared:
//
//   - BenchmarkIdentity: one ephemeral identity (ECDSA P-256 key and
//     certificate) against what Foolscap pays per Tub (RSA-2048 key and
//     certificate).
//   - BenchmarkConnectVsTLS: one full Foolscap connection (dial, upgrade,
//     TLS, hellos, decision, getReference, one call) against a bare TLS 1.3
//     mutual-authentication handshake, interleaved in the same loop, with
//     the default hybrid post-quantum key exchange and with X25519 alone.
//   - BenchmarkConnectServers: a broker connecting to N servers
//     (N = 10, 100, 1000) with an identity per server against one shared
//     identity: time until all are connected, bytes, goroutines and CPU per
//     connected server.
//   - BenchmarkPerServerVsShared: the same two identity modes alternated in
//     one loop, reporting their ratio.
//   - BenchmarkScale: a broker connecting to 2 000 servers with an identity
//     per server, or to 10 000 when TUBFARM_BENCH_SCALE=1.
//   - BenchmarkRestartStorm: 1 000 connected servers all restart at once,
//     right after connecting or after some uptime; how long until all are
//     back, how the reconnection attempts spread out, and the CPU they cost,
//     for each reconnection policy.
//
// The servers of the last four run in a child process (package
// bench/internal/gridproc), so that every figure is the client's alone.
// With TUBFARM_BENCH_PROFILE_DIR set, the multi-server benchmarks write
// heap and goroutine profiles taken when all servers are connected.
// docs/performance.md has the results. Run them with
//
//	go test -run '^$' -bench . -benchtime=1x ./bench/
//
// The side-by-side comparison with Python Foolscap is the command
// bench/compare.
package bench
