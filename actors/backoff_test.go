package actors

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	tubtls "github.com/tubfarm/tubfarm/tls"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{BaseDelay: time.Second, Multiplier: 2, Jitter: 0.2, MaxDelay: time.Minute}
	tests := []struct {
		failures int
		rnd      float64
		want     time.Duration
	}{
		{0, 0.5, time.Second}, // treated as 1
		{1, 0.5, time.Second},
		{2, 0.5, 2 * time.Second},
		{3, 0.5, 4 * time.Second},
		{6, 0.5, 32 * time.Second},
		{7, 0.5, time.Minute}, // 64 s capped
		{1000, 0.5, time.Minute},
		{math.MaxInt, 0.5, time.Minute},
		{1, 0, 800 * time.Millisecond}, // -20 %
		{1, 0.75, 1100 * time.Millisecond},
		{1, 1, 1200 * time.Millisecond}, // +20 % (rnd is < 1 in practice)
		{1, -3, 800 * time.Millisecond}, // clamped
		{1000, 1, 72 * time.Second},     // the cap plus jitter
	}
	for _, tt := range tests {
		if got := b.Delay(tt.failures, tt.rnd); got != tt.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tt.failures, tt.rnd, got, tt.want)
		}
	}
	if got := b.MaxDelayWithJitter(); got != 72*time.Second {
		t.Errorf("MaxDelayWithJitter = %v", got)
	}
}

// TestBackoffSchedules prints the nominal schedules of DefaultBackoff next
// to Foolscap's and gRPC's, and checks DefaultBackoff's documented numbers.
func TestBackoffSchedules(t *testing.T) {
	foolscap := Backoff{BaseDelay: 2718281828 * time.Nanosecond, Multiplier: math.E, MaxDelay: time.Hour} // delay = min(1 s·eⁿ, 1 h)
	grpc := Backoff{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Minute}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300}
	for i, w := range want {
		n := i + 1
		got := DefaultBackoff.Delay(n, 0.5)
		if got != w*time.Second {
			t.Errorf("DefaultBackoff.Delay(%d) = %v, want %v", n, got, w*time.Second)
		}
		t.Logf("failure %2d: default %6v  foolscap %10v  grpc %8v", n, got,
			foolscap.Delay(n, 0.5).Round(time.Second/10), grpc.Delay(n, 0.5).Round(time.Millisecond))
	}
	for _, b := range []Backoff{DefaultBackoff, DefaultRestartBackoff, foolscap, grpc} {
		if err := b.Validate(); err != nil {
			t.Errorf("%+v: %v", b, err)
		}
	}
}

func TestBackoffValidate(t *testing.T) {
	ok := DefaultBackoff
	tests := []struct {
		name   string
		modify func(*Backoff)
		field  string
	}{
		{"zero base", func(b *Backoff) { b.BaseDelay = 0 }, "BaseDelay"},
		{"multiplier below 1", func(b *Backoff) { b.Multiplier = 0.9 }, "Multiplier"},
		{"NaN multiplier", func(b *Backoff) { b.Multiplier = math.NaN() }, "Multiplier"},
		{"infinite multiplier", func(b *Backoff) { b.Multiplier = math.Inf(1) }, "Multiplier"},
		{"negative jitter", func(b *Backoff) { b.Jitter = -0.1 }, "Jitter"},
		{"jitter 1", func(b *Backoff) { b.Jitter = 1 }, "Jitter"},
		{"max below base", func(b *Backoff) { b.MaxDelay = b.BaseDelay / 2 }, "MaxDelay"},
		{"negative stable", func(b *Backoff) { b.StableAfter = -1 }, "StableAfter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ok
			tt.modify(&b)
			err := b.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: err}}
	}
	tests := []struct {
		name      string
		err       error
		reason    Reason
		permanent bool
	}{
		{"nil", nil, "", false},
		{"refused", opErr(syscall.ECONNREFUSED), ReasonRefused, false},
		{"reset", opErr(syscall.ECONNRESET), ReasonReset, false},
		{"eof", fmt.Errorf("reading banner: %w", io.EOF), ReasonReset, false},
		{"unexpected eof", io.ErrUnexpectedEOF, ReasonReset, false},
		{"closed", net.ErrClosed, ReasonReset, false},
		{"host unreachable", opErr(syscall.EHOSTUNREACH), ReasonUnreachable, false},
		{"net unreachable", opErr(syscall.ENETUNREACH), ReasonUnreachable, false},
		{"dns", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, ReasonDNS, false},
		{"ctx deadline", fmt.Errorf("connect: %w", context.DeadlineExceeded), ReasonTimeout, false},
		{"i/o deadline", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, ReasonTimeout, false},
		{"canceled", context.Canceled, ReasonCanceled, false},
		{"tubid mismatch", fmt.Errorf("handshake: %w", &tubtls.MismatchError{Want: "a", Got: "b"}), ReasonTubIDMismatch, true},
		{"tls alert", fmt.Errorf("tls: %w", tls.AlertError(40)), ReasonTLS, false},
		{"tls record header", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, ReasonTLS, false},
		{"connector says", &ConnectError{Reason: ReasonNoHints, Permanent: true, Err: errors.New("no usable hints")}, ReasonNoHints, true},
		{"connector says nothing", &ConnectError{Handler: "tor", Err: opErr(syscall.ECONNREFUSED)}, ReasonRefused, false},
		{"connector overrides mismatch", &ConnectError{Reason: ReasonNegotiation, Err: &tubtls.MismatchError{}}, ReasonNegotiation, false},
		{"panic", &PanicError{Value: 1}, ReasonPanic, false},
		{"identity", &ConnectError{Reason: ReasonIdentity, Err: errors.New("entropy")}, ReasonIdentity, false},
		{"other", errors.New("something"), ReasonOther, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, p := classify(tt.err)
			if r != tt.reason || p != tt.permanent {
				t.Errorf("classify(%v) = %q, %v; want %q, %v", tt.err, r, p, tt.reason, tt.permanent)
			}
			if r != "" && !slices.Contains(reasons, r) {
				t.Errorf("reason %q is not in the closed set", r)
			}
		})
	}
}

func TestHandlerLabel(t *testing.T) {
	for in, want := range map[string]string{"tcp": "tcp", "tor": "tor", "i2p": "i2p", "": "none", "socks5": "other", "TCP": "other"} {
		if got := handlerLabel(in); got != want {
			t.Errorf("handlerLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSummary(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		st   Status
		want string
	}{
		{Status{State: Idle}, "unstarted"},
		{Status{State: Connecting}, "Trying to connect"},
		{Status{State: Connected, WinningHint: "tcp:example.org:3456", Handler: "tcp"}, "Connected to tcp:example.org:3456 via tcp"},
		{Status{State: WaitingToRetry, LastAttempt: now.Add(-1500 * time.Millisecond), NextAttempt: now.Add(2900 * time.Millisecond)},
			"Reconnecting in 2 seconds (last attempt 1s ago)"},
		{Status{State: WaitingToRetry, LastAttempt: now.Add(-10 * time.Second), NextAttempt: now.Add(-time.Second)},
			"Reconnecting in 0 seconds (last attempt 10s ago)"},
		{Status{State: Stopped}, "stopped"},
		{Status{State: State(42)}, "State(42)"},
	}
	for _, tt := range tests {
		if got := summary(&tt.st, now); got != tt.want {
			t.Errorf("summary(%v) = %q, want %q", tt.st.State, got, tt.want)
		}
	}
	st := Status{IdentityCreated: now.Add(-time.Hour)}
	if st.IdentityAge(now) != time.Hour || (Status{}).IdentityAge(now) != 0 {
		t.Error("IdentityAge")
	}
}

func TestVersionString(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{map[string]any{"application-version": "tahoe-lafs/1.20.0"}, "tahoe-lafs/1.20.0"},
		{map[string]any{"application-version": []byte("tahoe-lafs/1.19.0")}, "tahoe-lafs/1.19.0"},
		{map[any]any{"application-version": "a"}, "a"},
		{map[any]any{"application-version": []byte("b")}, "b"},
		{map[string]any{"application-version": 7}, ""},
		{map[any]any{1: 2}, ""},
		{nil, ""},
		{"tahoe", ""},
		{orderedDict{"application-version": []byte("tahoe-lafs/1.18.0")}, "tahoe-lafs/1.18.0"},
		{orderedDict{"other": "x"}, ""},
	}
	for _, tt := range tests {
		if got := versionString(tt.in); got != tt.want {
			t.Errorf("versionString(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// orderedDict stands for foolscap.Dict, which actors cannot import: any
// value with a GetString method is read through it.
type orderedDict map[string]any

func (d orderedDict) GetString(k string) (any, bool) { v, ok := d[k]; return v, ok }
