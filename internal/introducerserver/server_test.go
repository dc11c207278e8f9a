package introducerserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/introducer"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Close waits for the push loop of a subscription that registered before
// Close and starts only after Close began: such a subscription was once
// counted only when its loop started, so Close could return (and its Wait
// race with the loop's registration) while the subscription stayed behind.
func TestCloseWaitsForSubscriptionBeingSetUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{})
	testHookBeforeStart = func() {
		close(reached)
		// Hold the subscription between registration and start until
		// Close has marked the server closed and stopped its senders.
		s.Wait(ctx, func(s *Server) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.closed
		})
	}
	defer func() { testHookBeforeStart = nil }()

	conn, ref := dial(t, ctx, s.FURL)
	defer conn.Close()
	sub := &introducer.Subscriber{Table: introducer.NewTable(introducer.Limits{}, nil)}
	subscribed := make(chan error, 1)
	go func() {
		_, err := introducer.Subscribe(ctx, ref, sub, introducer.SubscriberInfo("", "test"))
		subscribed <- err
	}()
	select {
	case <-reached:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	s.Close()
	if n := s.Subscribers(); n != 0 {
		t.Errorf("after Close, %d subscriptions are still served", n)
	}
	<-subscribed // answered, or failed as the connection closed: either is fine
}

// dial connects to the introducer FURL and returns the connection and the
// introducer's reference.
func dial(t *testing.T, ctx context.Context, furl string) (*foolscap.Conn, *foolscap.RemoteRef) {
	t.Helper()
	f, err := hints.ParseFURL(furl)
	if err != nil {
		t.Fatal(err)
	}
	id, err := tubtls.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	var targets []foolscap.Target
	for _, raw := range f.Hints {
		targets = append(targets, foolscap.Target{Hint: raw, Addr: strings.TrimPrefix(raw, "tcp:"), Host: "127.0.0.1", Handler: "tcp"})
	}
	conn, _, err := foolscap.Dial(ctx, foolscap.DialConfig{Identity: id, TubID: f.TubID, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := conn.GetReference(ctx, f.Name)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return conn, ref
}
