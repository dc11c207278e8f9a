package messages

import (
	"testing"

	"github.com/tubfarm/tubfarm/hints"
)

func TestStateString(t *testing.T) {
	want := []string{"idle", "connecting", "connected", "waiting_to_retry", "stopped"}
	for i, w := range want {
		if got := State(i).String(); got != w {
			t.Errorf("State(%d) = %q, want %q", i, got, w)
		}
	}
	if NumStates != len(want) {
		t.Errorf("NumStates = %d, want %d", NumStates, len(want))
	}
	for _, s := range []State{-1, State(NumStates), 100} {
		if got, want := s.String(), "State("; len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("State(%d).String() = %q, want the State(N) fallback", int(s), got)
		}
	}
	var zero State
	if zero != Idle {
		t.Error("the zero State is not Idle")
	}
}

func TestServerSpecClone(t *testing.T) {
	s := ServerSpec{ID: "a", Nickname: "k", Announcement: map[string]any{"nickname": "x"}}
	c := s.Clone()
	c.Announcement["nickname"] = "y"
	if s.Announcement["nickname"] != "x" {
		t.Error("Clone shares the Announcement map")
	}
	if c.ID != "a" || c.Nickname != "k" {
		t.Errorf("Clone = %+v", c)
	}
	if (ServerSpec{}).Clone().Announcement != nil {
		t.Error("Clone of a nil map is not nil")
	}
}

// TestSameConnection: the broker keeps a server's connection across specs
// that differ only in display fields, and replaces it when the FURL or the
// policy changes.
func TestSameConnection(t *testing.T) {
	pol, err := hints.NewPolicy(hints.HandlerTCP, true, true, false)
	if err != nil {
		t.Fatal(err)
	}
	base := ServerSpec{ID: "a", Nickname: "x", Source: "servers.yaml", Policy: pol,
		FURL: hints.FURL{TubID: "t", Hints: []string{"tcp:a:1"}, Name: "n"}}
	other := base.Clone()
	other.Nickname, other.Source, other.Announcement = "y", "introducer", map[string]any{"seqnum": 2}
	if !base.SameConnection(other) {
		t.Error("a display change counts as a new connection")
	}
	hint := base.Clone()
	hint.FURL.Hints[0] = "tcp:b:1"
	if base.FURL.Hints[0] != "tcp:a:1" {
		t.Fatal("Clone shares the FURL's hints")
	}
	tor, err := pol.WithOverride(map[string]string{"tcp": "tor"})
	if err != nil {
		t.Fatal(err)
	}
	withTor := base
	withTor.Policy = tor
	name := base
	name.FURL.Name = "m"
	for _, c := range []ServerSpec{hint, withTor, name} {
		if base.SameConnection(c) {
			t.Errorf("%+v counts as the same connection as %+v", c, base)
		}
	}
}
