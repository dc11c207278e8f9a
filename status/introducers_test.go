package status

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/actors"
	"github.com/tubfarm/tubfarm/messages"
)

type introSource struct{}

func (introSource) Statuses() []actors.Status {
	return []actors.Status{{ID: "v0-aaaa", Nickname: "s1", State: actors.Connected, Connected: true}}
}

func (introSource) IntroducerStatuses() []messages.IntroducerStatus {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return []messages.IntroducerStatus{{
		Petname: "alpha", State: messages.Connected, Connected: true, Since: t, LastReceived: t,
		Summary: "Connected to tcp:127.0.0.1:1 via tcp", ClientTubID: "abcdefghijklmnopqrstuvwxyz234567",
		Subscribed: true, Version: "tahoe-lafs/1.20.0", Servers: 1,
		Announcements: map[string]uint64{"accepted": 2, "duplicate": 1, "bad_signature": 3},
	}}
}

func (introSource) AnnouncedBy() map[string][]string {
	return map[string][]string{"v0-aaaa": {"alpha", "beta"}}
}

func TestIntroducersReport(t *testing.T) {
	h := NewHandler(introSource{}, Options{Refresh: -1})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/?t=json", nil))
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	intros, _ := doc["introducers"].([]any)
	if len(intros) != 1 {
		t.Fatalf("introducers: %v", doc["introducers"])
	}
	in := intros[0].(map[string]any)
	for _, k := range []string{"petname", "connected", "since", "last_received_time", "summary", "announcements", "client_tubid"} {
		if _, ok := in[k]; !ok {
			t.Errorf("introducer has no %q", k)
		}
	}
	ann := in["announcements"].(map[string]any)
	if ann["received"] != 6.0 || ann["accepted"] != 2.0 || ann["rejected"] != 3.0 {
		t.Errorf("announcements %v", ann)
	}
	srv := doc["servers"].([]any)[0].(map[string]any)
	if by, _ := srv["introducers"].([]any); len(by) != 2 || by[0] != "alpha" {
		t.Errorf("server introducers %v", srv["introducers"])
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	page := rec.Body.String()
	for _, want := range []string{`<table id="introducers">`, `data-petname="alpha"`, "6 received · 2 accepted · 3 rejected", "announced by alpha, beta"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
