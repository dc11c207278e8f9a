package actors

import "time"

// A Clock tells the broker the time and schedules its timers (retry delays
// and restart delays). The default is the real clock, which also works
// inside a testing/synctest bubble; tests that need real sockets, which a
// synctest bubble does not let the fake clock advance past, inject their own
// Clock with [WithClock].
//
// Attempt timeouts (Config.ConnectTimeout) always use the real clock,
// through the context package.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d, unless the returned
	// Timer is stopped first, like time.AfterFunc.
	AfterFunc(d time.Duration, f func()) Timer
}

// A Timer is a timer made by [Clock.AfterFunc].
type Timer interface {
	// Stop prevents the timer from firing. It returns false if the timer
	// already fired or was stopped.
	Stop() bool
}

// RealClock returns the Clock backed by the time package, the default.
func RealClock() Clock { return realClock{} }

// realClock is the Clock backed by the time package.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
