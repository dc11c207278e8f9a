package e2e

import (
	"sync"
	"time"

	"github.com/tubfarm/tubfarm/actors"
)

// jumpClock is an actors.Clock that stands still until Jump moves it, and
// fires the timers that are then due.
type jumpClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*jumpTimer
	wg     sync.WaitGroup
}

type jumpTimer struct {
	c       *jumpClock
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jumpClock) AfterFunc(d time.Duration, f func()) actors.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &jumpTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *jumpTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// pending returns how many timers wait to fire.
func (c *jumpClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

// Jump moves the clock forward by d and fires every timer now due.
func (c *jumpClock) Jump(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*jumpTimer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.fired = true
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, t := range due {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			t.f()
		}()
	}
}
