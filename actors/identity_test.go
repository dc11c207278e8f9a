package actors

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tubfarm/tubfarm/messages"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// TestIdentityMadeWhenPresented: an attempt's certificate is made only when
// the Connector asks for it. Two refused attempts that never ask make no
// key pair, yet each has its own Key (PerAttempt) or the server's one
// (PerServer); the status shows a TubID only once a certificate has been
// presented, and it is that certificate's.
func TestIdentityMadeWhenPresented(t *testing.T) {
	for _, policy := range []IdentityPolicy{PerAttempt, PerServer} {
		t.Run(policy.String(), func(t *testing.T) {
			var made atomic.Int32
			source := func() (*tubtls.Identity, error) {
				made.Add(1)
				return tubtls.NewEphemeral()
			}
			var (
				mu    sync.Mutex
				keys  []string
				certs []string
			)
			conn := ConnectorFunc(func(ctx context.Context, srv messages.ServerSpec, id *Identity, report func(hint, status string)) (Session, error) {
				mu.Lock()
				keys = append(keys, id.Key)
				n := len(keys)
				mu.Unlock()
				if n <= 2 { // refused before any certificate was needed
					return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
				}
				cert, err := id.Certificate()
				if err != nil {
					return nil, err
				}
				mu.Lock()
				certs = append(certs, cert.TubID)
				mu.Unlock()
				return newMemSession(srv.ID, SessionInfo{Hint: "tcp:s:1", Handler: "tcp"}), nil
			})
			b, clk := newTestBroker(t, Config{Connector: conn, Identity: policy}, WithIdentitySource(source))
			rec := newRecorder(t, b)
			if err := b.Apply([]messages.ServerSpec{spec("s", "k")}); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 2; i++ {
				rec.until(func() bool { return rec.count("s", WaitingToRetry) == i })
				st, _ := b.Server("s")
				if st.TubID != "" || made.Load() != 0 {
					t.Fatalf("after refused attempt %d: status TubID %q, %d certificates made", i, st.TubID, made.Load())
				}
				// Exactly the wait: the fake clock fires, within one Advance,
				// any timer armed meanwhile that falls due before its end.
				clk.Advance(st.NextAttempt.Sub(clk.Now()))
			}
			rec.until(func() bool { return rec.count("s", Connected) == 1 })
			if made.Load() != 1 {
				t.Errorf("%d certificates made, want 1", made.Load())
			}
			mu.Lock()
			defer mu.Unlock()
			distinct := len(slices.Compact(slices.Sorted(slices.Values(keys))))
			if want := map[IdentityPolicy]int{PerAttempt: 3, PerServer: 1}[policy]; distinct != want {
				t.Errorf("keys %v: %d distinct, want %d", keys, distinct, want)
			}
			if len(keys[0]) != 32 {
				t.Errorf("key %q: want 32 hex digits", keys[0])
			}
			if st, _ := b.Server("s"); st.TubID != certs[0] || st.TubID == keys[2] {
				t.Errorf("status TubID %q; the certificate presented was %s, the key %s", st.TubID, certs[0], keys[2])
			}
			if got := testutil.CollectAndCount(b.sh.m.identitySeconds); got != 1 {
				t.Errorf("identity histogram series = %d", got)
			}
		})
	}
}

// TestIdentityError: a certificate that cannot be made fails the attempt
// that asked for it with reason "identity", and every later call of that
// identity returns the same error without trying again.
func TestIdentityError(t *testing.T) {
	entropy := errors.New("no entropy")
	var calls atomic.Int32
	source := func() (*tubtls.Identity, error) { calls.Add(1); return nil, entropy }
	conn := ConnectorFunc(func(ctx context.Context, srv messages.ServerSpec, id *Identity, report func(hint, status string)) (Session, error) {
		if _, err := id.Certificate(); err == nil {
			t.Error("Certificate succeeded")
		}
		_, err := id.Certificate()
		return nil, err
	})
	b, _ := newTestBroker(t, Config{Connector: conn}, WithIdentitySource(source))
	rec := newRecorder(t, b)
	if err := b.Apply([]messages.ServerSpec{spec("s", "k")}); err != nil {
		t.Fatal(err)
	}
	rec.until(func() bool { return rec.count("s", WaitingToRetry) == 1 })
	st, _ := b.Server("s")
	if st.LastFailureReason != ReasonIdentity || !strings.Contains(st.LastFailure, entropy.Error()) {
		t.Errorf("reason %q, failure %q", st.LastFailureReason, st.LastFailure)
	}
	if calls.Load() != 1 {
		t.Errorf("the source was called %d times, want 1", calls.Load())
	}
}
