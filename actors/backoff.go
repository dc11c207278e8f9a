package actors

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Backoff describes the delays between connection attempts to one server:
// exponential growth from BaseDelay by Multiplier, capped at MaxDelay, with
// uniform jitter of ±Jitter. It is a plain value with no state: the broker
// keeps the failure count and supplies the random number, which makes
// [Backoff.Delay] a pure function.
//
// A Backoff is used twice by the broker: [Config.Backoff] spaces reconnection
// attempts after network failures, and [Config.RestartBackoff] spaces restarts
// of a server's child actor after it panicked.
type Backoff struct {
	// BaseDelay is the delay before the first retry after a failure.
	BaseDelay time.Duration

	// Multiplier scales the delay after each further consecutive failure.
	// It must be at least 1.
	Multiplier float64

	// Jitter is the relative spread of the random factor applied to every
	// delay: the delay is multiplied by a value drawn uniformly from
	// [1-Jitter, 1+Jitter). It must be in [0, 1).
	Jitter float64

	// MaxDelay caps the delay before jitter is applied, so a delay never
	// exceeds MaxDelay×(1+Jitter) (as in gRPC). It must be at least
	// BaseDelay.
	MaxDelay time.Duration

	// StableAfter is how long a connection must stay up for the failure
	// count to be forgotten when it is lost: a session lost sooner counts as
	// one more consecutive failure, so a server that accepts and drops at
	// once is retried with growing delays rather than in a tight loop.
	// Zero forgets the failures on any successful connection, as Foolscap
	// and gRPC do.
	StableAfter time.Duration
}

// DefaultBackoff is the reconnection backoff used when [Config.Backoff] is
// the zero value: 1 s, doubling, ±20 % uniform jitter, capped at 5 min, with
// failures forgotten once a connection has stayed up for 30 s. Why these
// numbers, against Foolscap's and gRPC's schedules, is in
// docs/state-machine.md, "Backoff".
var DefaultBackoff = Backoff{
	BaseDelay:   1 * time.Second,
	Multiplier:  2,
	Jitter:      0.2,
	MaxDelay:    5 * time.Minute,
	StableAfter: 30 * time.Second,
}

// DefaultRestartBackoff spaces restarts of a server's child actor after it
// panicked, when [Config.RestartBackoff] is the zero value: 100 ms,
// doubling, ±20 % jitter, capped at 30 s (docs/state-machine.md,
// "Backoff").
var DefaultRestartBackoff = Backoff{
	BaseDelay:   100 * time.Millisecond,
	Multiplier:  2,
	Jitter:      0.2,
	MaxDelay:    30 * time.Second,
	StableAfter: 30 * time.Second,
}

// Delay returns the delay before the next attempt after failures
// consecutive failures (failures ≥ 1; smaller values are treated as 1). rnd
// must be a number drawn uniformly from [0, 1); 0.5 yields the nominal,
// jitter-free delay.
//
// The nominal delay is min(BaseDelay×Multiplier^(failures-1), MaxDelay); the
// result is the nominal delay times 1+Jitter×(2×rnd-1).
func (b Backoff) Delay(failures int, rnd float64) time.Duration {
	return b.jitter(b.nominal(failures), rnd)
}

// MaxDelayWithJitter returns the largest delay Delay can return for rnd in
// [0, 1): MaxDelay×(1+Jitter).
func (b Backoff) MaxDelayWithJitter() time.Duration {
	return time.Duration(float64(b.MaxDelay) * (1 + b.Jitter))
}

// nominal is the jitter-free delay after failures consecutive failures.
func (b Backoff) nominal(failures int) time.Duration {
	if failures < 1 {
		failures = 1
	}
	d := float64(b.BaseDelay) * math.Pow(b.Multiplier, float64(failures-1))
	if d > float64(b.MaxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		return b.MaxDelay
	}
	return time.Duration(d)
}

// jitter applies the random factor to d.
func (b Backoff) jitter(d time.Duration, rnd float64) time.Duration {
	rnd = min(max(rnd, 0), 1)
	f := 1 + b.Jitter*(2*rnd-1)
	return time.Duration(float64(d) * f)
}

// Validate reports the first field that is out of range, naming it.
func (b Backoff) Validate() error {
	switch {
	case b.BaseDelay <= 0:
		return fmt.Errorf("actors: backoff: BaseDelay %v must be positive", b.BaseDelay)
	case !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0):
		return fmt.Errorf("actors: backoff: Multiplier %v must be at least 1", b.Multiplier)
	case !(b.Jitter >= 0 && b.Jitter < 1):
		return fmt.Errorf("actors: backoff: Jitter %v must be in [0, 1)", b.Jitter)
	case b.MaxDelay < b.BaseDelay:
		return fmt.Errorf("actors: backoff: MaxDelay %v must be at least BaseDelay %v", b.MaxDelay, b.BaseDelay)
	case b.StableAfter < 0:
		return errors.New("actors: backoff: StableAfter must not be negative")
	}
	return nil
}
