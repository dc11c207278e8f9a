// Package e2e holds the end-to-end tests of package tubfarm: brokers on
// real grids on loopback, the fault matrix, hostile peers and files, the
// privacy checks, interop with Python Foolscap, discovery through
// introducers, and the soak benchmark. It has no code of its own: the
// tests use tubfarm through its exported API only, as a program would.
// docs/reliability.md and docs/privacy.md say which test covers what.
package e2e
