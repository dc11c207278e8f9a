// Package liveview shows a running broker on a terminal or a log: a
// progress line while servers connect, a status table, and one line per
// state change. cmd/demo and cmd/tubfarm's status subcommand share it.
//
// On a terminal (TTY true) the progress line is redrawn in place and the
// screen is redrawn every second with colours; otherwise every line is
// printed once, the table every [TableEvery], and no escape sequence is
// written. Text that came from a server is escaped with termsafe.
package liveview

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tubfarm/tubfarm"
	"github.com/tubfarm/tubfarm/internal/termsafe"
	"github.com/tubfarm/tubfarm/messages"
	"github.com/tubfarm/tubfarm/status"
)

// TableEvery is how often the full table is printed when the output is not
// a terminal (event lines are printed as they happen).
const TableEvery = 30 * time.Second

// maxEvents is how many recent event lines a terminal screen shows.
const maxEvents = 12

// A View shows one broker. Set the fields, then call WaitConnected and
// Live; Event may be called from any goroutine.
type View struct {
	Broker  *tubfarm.Broker
	Handler *status.Handler // source of the reports
	Out     io.Writer
	TTY     bool   // redraw in place, with colours
	Title   string // first words of the terminal screen's header, e.g. "tubfarm demo"
	Dir     string // node directory, shown in the screen header
	URL     string // status page URL, if one is served
	Started time.Time

	mu     sync.Mutex // guards events and writes to Out once Live runs
	events []string
}

// WaitConnected shows a progress line until total servers are connected,
// timeout passes or ctx ends, and reports whether all connected.
func (v *View) WaitConnected(ctx context.Context, total int, timeout time.Duration) bool {
	ch, unsubscribe := v.Broker.Subscribe()
	defer unsubscribe()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond) // keeps the elapsed time moving on a terminal
	defer tick.Stop()
	if !v.TTY {
		tick.Stop()
	}
	last := -1
	for {
		n := v.connected()
		if n != last || v.TTY {
			v.progress(n, total, n >= total)
			last = n
		}
		if n >= total {
			return true
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			if v.TTY {
				fmt.Fprintln(v.Out)
			}
			return false
		case <-ctx.Done():
			if v.TTY {
				fmt.Fprintln(v.Out)
			}
			return false
		}
	}
}

func (v *View) connected() int {
	n := 0
	for _, st := range v.Broker.Statuses() {
		if st.Connected {
			n++
		}
	}
	return n
}

// progress prints "connecting: N of M servers connected", in place on a
// terminal.
func (v *View) progress(n, total int, done bool) {
	const width = 24
	bar := ""
	if total > 0 {
		fill := min(n, total) * width / total
		bar = "[" + strings.Repeat("#", fill) + strings.Repeat(".", width-fill) + "] "
	}
	elapsed := status.Human(time.Since(v.Started))
	word := "connecting:"
	if done {
		word = "connected: "
	}
	line := fmt.Sprintf("%s %s%d of %d servers connected (%s)", word, bar, n, total, elapsed)
	if v.TTY {
		fmt.Fprintf(v.Out, "\r\x1b[K%s", line)
		if done {
			fmt.Fprintln(v.Out)
		}
		return
	}
	fmt.Fprintln(v.Out, line)
}

// Live shows the status until ctx ends: on a terminal, a screen redrawn
// every second; otherwise one line per event and the table every
// TableEvery.
func (v *View) Live(ctx context.Context) {
	ch, unsubscribe := v.Broker.Subscribe()
	defer unsubscribe()

	v.mu.Lock()
	WriteTable(v.Out, v.Handler.Report(), v.TTY)
	if v.URL != "" {
		fmt.Fprintf(v.Out, "ready: status page at %s (Ctrl-C to stop)\n", v.URL)
	} else {
		fmt.Fprintf(v.Out, "ready (Ctrl-C to stop)\n")
	}
	v.mu.Unlock()

	redraw := time.NewTicker(time.Second)
	defer redraw.Stop()
	if !v.TTY {
		redraw.Reset(TableEvery)
	}
	for {
		select {
		case <-ctx.Done():
			v.mu.Lock()
			if v.TTY {
				fmt.Fprintln(v.Out)
			}
			fmt.Fprintln(v.Out, "shutting down")
			v.mu.Unlock()
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			v.Event(v.describe(ev))
		case <-redraw.C:
			v.mu.Lock()
			if v.TTY {
				v.drawScreen()
			} else {
				WriteTable(v.Out, v.Handler.Report(), false)
			}
			v.mu.Unlock()
		}
	}
}

// Event records an event line and, when the output is not a terminal,
// prints it at once (on a terminal the next redraw shows it). line must
// already be safe to print.
func (v *View) Event(line string) {
	line = time.Now().Format("15:04:05") + "  " + line
	v.mu.Lock()
	defer v.mu.Unlock()
	v.events = append(v.events, line)
	if len(v.events) > maxEvents {
		v.events = v.events[len(v.events)-maxEvents:]
	}
	if !v.TTY {
		fmt.Fprintln(v.Out, line)
	}
}

func (v *View) nickname(id string) string {
	if s, ok := v.Broker.Server(id); ok && s.Nickname() != "" {
		return termsafe.Clip(s.Nickname(), maxNickname)
	}
	return termsafe.Clip(id, 64)
}

// describe turns a state change into an event line.
func (v *View) describe(ev messages.StateChanged) string {
	who := fmt.Sprintf("%-12s", v.nickname(ev.ServerID))
	switch ev.To {
	case messages.Connected:
		return fmt.Sprintf("%s connected to %s via %s, as client %s", who,
			termsafe.Clip(ev.Hint, 80), termsafe.Clip(ev.Handler, 8), ShortID(ev.TubID))
	case messages.WaitingToRetry:
		why := ev.Reason
		if ev.Err != nil {
			why += ": " + ev.Err.Error()
		}
		if why == "" {
			why = "waiting"
		}
		return fmt.Sprintf("%s %s → waiting_to_retry, next attempt in %s (%s)", who, ev.From, status.Human(ev.Delay), termsafe.Clip(why, 160))
	case messages.Connecting:
		return fmt.Sprintf("%s connecting, as client %s", who, ShortID(ev.TubID))
	}
	return fmt.Sprintf("%s %s → %s", who, ev.From, ev.To)
}

// drawScreen redraws the terminal: header, table, recent events. v.mu is
// held.
func (v *View) drawScreen() {
	var sb strings.Builder
	sb.WriteString("\x1b[H\x1b[2J")
	fmt.Fprintf(&sb, "%s — up %s — %s", v.Title, status.Human(time.Since(v.Started)), v.Dir)
	if v.URL != "" {
		fmt.Fprintf(&sb, " — status page %s", v.URL)
	}
	sb.WriteString(" — Ctrl-C to stop\n\n")
	WriteTable(&sb, v.Handler.Report(), true)
	sb.WriteString("\nrecent events:\n")
	for _, e := range v.events {
		sb.WriteString("  " + e + "\n")
	}
	io.WriteString(v.Out, sb.String())
}

// IsTerminal reports whether f is a terminal that takes ANSI escape
// sequences (not TERM=dumb, and NO_COLOR unset): the TTY setting for a
// program's standard output.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	return os.Getenv("TERM") != "dumb" && os.Getenv("NO_COLOR") == ""
}
