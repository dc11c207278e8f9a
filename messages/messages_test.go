package messages

import "testing"

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
	s := ServerSpec{ID: "a", Key: "k", Announcement: map[string]any{"nickname": "x"}}
	c := s.Clone()
	c.Announcement["nickname"] = "y"
	if s.Announcement["nickname"] != "x" {
		t.Error("Clone shares the Announcement map")
	}
	if c.ID != "a" || c.Key != "k" {
		t.Errorf("Clone = %+v", c)
	}
	if (ServerSpec{}).Clone().Announcement != nil {
		t.Error("Clone of a nil map is not nil")
	}
}
