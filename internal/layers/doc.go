// Package layers has no code: its test keeps the import directions that
// docs/architecture.md shows, by listing every package's dependencies with
// go list.
package layers
