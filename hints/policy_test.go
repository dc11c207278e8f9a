package hints

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseHandler(t *testing.T) {
	for in, want := range map[string]Handler{
		"tcp": HandlerTCP, "TOR": HandlerTor, " i2p ": HandlerI2P, "Disabled": HandlerDisabled,
	} {
		if got, err := ParseHandler(in); err != nil || got != want {
			t.Errorf("ParseHandler(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"socks": `hints: unknown handler type "socks" (want tcp, tor, i2p or disabled)`,
		"":      `hints: unknown handler type "" (want tcp, tor, i2p or disabled)`,
		"none":  `hints: unknown handler type "none" (want tcp, tor, i2p or disabled)`,
	} {
		_, err := ParseHandler(in)
		if err == nil || err.Error() != msg || !errors.Is(err, ErrUnknownHandler) {
			t.Errorf("ParseHandler(%q) error = %v, want %q wrapping ErrUnknownHandler", in, err, msg)
		}
	}
}

func TestNewPolicy(t *testing.T) {
	tests := []struct {
		tcp           Handler
		reveal        bool
		tor, i2p      bool
		wantErr       string
		is            error
		wantTCP       Handler
		wantRevealsIP bool
	}{
		{tcp: HandlerTCP, reveal: true, tor: true, i2p: true, wantTCP: HandlerTCP, wantRevealsIP: true},
		{tcp: HandlerTCP, reveal: true, wantTCP: HandlerTCP, wantRevealsIP: true},
		{tcp: HandlerTCP, reveal: false, tor: true, i2p: true,
			wantErr: "hints: Privacy requested with `reveal-IP-address = false` but `tcp = tcp` conflicts with this."},
		{tcp: HandlerTor, reveal: false, tor: true, wantTCP: HandlerTor},
		{tcp: HandlerTor, reveal: true, tor: true, wantTCP: HandlerTor},
		{tcp: HandlerTor, reveal: false, tor: false,
			wantErr: `hints: [connections] tcp = tor uses unavailable handler type "tor": [tor] enabled = false`, is: ErrHandlerUnavailable},
		{tcp: HandlerDisabled, reveal: false, i2p: true, wantTCP: HandlerDisabled},
		{tcp: HandlerDisabled, reveal: true, wantTCP: HandlerDisabled},
		{tcp: HandlerI2P, reveal: true, i2p: true,
			wantErr: "hints: [connections] tcp = i2p is not supported: I2P cannot reach TCP addresses (want tcp, tor or disabled)"},
		{tcp: "socks", reveal: true,
			wantErr: `hints: unknown handler type "socks" (want tcp, tor, i2p or disabled)`, is: ErrUnknownHandler},
		{tcp: "", reveal: true,
			wantErr: `hints: unknown handler type "" (want tcp, tor, i2p or disabled)`, is: ErrUnknownHandler},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("tcp=%s/reveal=%v/tor=%v/i2p=%v", tt.tcp, tt.reveal, tt.tor, tt.i2p)
		t.Run(name, func(t *testing.T) {
			p, err := NewPolicy(tt.tcp, tt.reveal, tt.tor, tt.i2p)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("NewPolicy error = %v, want %q", err, tt.wantErr)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Errorf("error does not match %v", tt.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Handlers[KindTCP] != tt.wantTCP || p.Handlers[KindTor] != HandlerTor || p.Handlers[KindI2P] != HandlerI2P {
				t.Errorf("Handlers = %v", p.Handlers)
			}
			if !p.Available[HandlerTCP] || p.Available[HandlerTor] != tt.tor || p.Available[HandlerI2P] != tt.i2p {
				t.Errorf("Available = %v", p.Available)
			}
			if p.RevealIP != tt.reveal || len(p.Overridden) != 0 {
				t.Errorf("RevealIP = %v, Overridden = %v", p.RevealIP, p.Overridden)
			}
			if p.RevealsIP() != tt.wantRevealsIP {
				t.Errorf("RevealsIP() = %v, want %v", p.RevealsIP(), tt.wantRevealsIP)
			}
		})
	}
}

func TestPrivacyErrorType(t *testing.T) {
	_, err := NewPolicy(HandlerTCP, false, true, false)
	var pe *PrivacyError
	if !errors.As(err, &pe) || pe.Msg != privacyMsg {
		t.Fatalf("NewPolicy error %#v is not a *PrivacyError with Tahoe's message", err)
	}
}

func TestWithOverride(t *testing.T) {
	base, err := NewPolicy(HandlerTor, false, true, false)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		conns   map[string]string
		want    map[Kind]Handler
		wantErr string
		is      error
	}{
		{conns: nil, want: map[Kind]Handler{KindTCP: HandlerTor, KindTor: HandlerTor, KindI2P: HandlerI2P}},
		{conns: map[string]string{"tcp": "tcp"}, want: map[Kind]Handler{KindTCP: HandlerTCP, KindTor: HandlerTor, KindI2P: HandlerI2P}},
		{conns: map[string]string{"tcp": "Disabled", "tor": "disabled"}, want: map[Kind]Handler{KindTCP: HandlerDisabled, KindTor: HandlerDisabled, KindI2P: HandlerI2P}},
		{conns: map[string]string{"i2p": "tor", "tor": "tcp"}, want: map[Kind]Handler{KindTCP: HandlerTor, KindTor: HandlerTCP, KindI2P: HandlerTor}},
		{conns: map[string]string{"tcp": "socks"},
			wantErr: `hints: connections override "tcp": unknown handler type "socks" (want tcp, tor, i2p or disabled)`, is: ErrUnknownHandler},
		{conns: map[string]string{"tcp": ""},
			wantErr: `hints: connections override "tcp": unknown handler type "" (want tcp, tor, i2p or disabled)`, is: ErrUnknownHandler},
		{conns: map[string]string{"foo": "tcp"},
			wantErr: `hints: connections override: unknown hint type "foo" (want tcp, tor or i2p)`, is: ErrUnknownHintType},
		{conns: map[string]string{"TCP": "tcp"},
			wantErr: `hints: connections override: unknown hint type "TCP" (want tcp, tor or i2p)`, is: ErrUnknownHintType},
		{conns: map[string]string{"zzz": "x", "tor": "bogus", "tcp": "tcp"}, // first bad key in sorted order
			wantErr: `hints: connections override "tor": unknown handler type "bogus" (want tcp, tor, i2p or disabled)`, is: ErrUnknownHandler},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.conns), func(t *testing.T) {
			p, err := base.WithOverride(tt.conns)
			if tt.wantErr != "" {
				var oe *OverrideError
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, tt.is) || !errors.As(err, &oe) {
					t.Fatalf("WithOverride error = %v, want *OverrideError %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, h := range tt.want {
				if p.Handlers[k] != h {
					t.Errorf("Handlers[%s] = %q, want %q", k, p.Handlers[k], h)
				}
				if _, ok := tt.conns[string(k)]; p.Overridden[k] != ok {
					t.Errorf("Overridden[%s] = %v, want %v", k, p.Overridden[k], ok)
				}
			}
			if p.RevealIP != base.RevealIP {
				t.Error("RevealIP changed")
			}
		})
	}
	// The receiver is never modified.
	if base.Handlers[KindTCP] != HandlerTor || len(base.Overridden) != 0 {
		t.Errorf("WithOverride modified its receiver: %+v", base)
	}
}

// TestDecideMatrix runs every combination of [connections] tcp, reveal-IP,
// [tor]/[i2p] enabled, per-server override and hint kind against a
// statement of Tahoe-LAFS's rules written independently of Decide.
func TestDecideMatrix(t *testing.T) {
	hintsByKind := map[Kind]string{
		KindTCP: "tcp:example.com:80",
		KindTor: "tor:abcdefghijklmnop.onion:80",
		KindI2P: "i2p:abcdef.b32.i2p",
	}
	overrides := []map[string]string{nil}
	for _, k := range []string{"tcp", "tor", "i2p"} {
		for _, h := range []string{"tcp", "tor", "i2p", "disabled"} {
			overrides = append(overrides, map[string]string{k: h})
		}
	}
	overrides = append(overrides, map[string]string{"tcp": "tcp", "tor": "disabled", "i2p": "tor"})

	n := 0
	for _, tcp := range []Handler{HandlerTCP, HandlerTor, HandlerDisabled, HandlerI2P} {
		for _, reveal := range []bool{true, false} {
			for _, torOn := range []bool{true, false} {
				for _, i2pOn := range []bool{true, false} {
					base, err := NewPolicy(tcp, reveal, torOn, i2pOn)
					wantNewErr := tcp == HandlerI2P || (tcp == HandlerTor && !torOn) || (tcp == HandlerTCP && !reveal)
					if (err != nil) != wantNewErr {
						t.Fatalf("NewPolicy(%s, %v, %v, %v) error = %v, want error: %v", tcp, reveal, torOn, i2pOn, err, wantNewErr)
					}
					if err != nil {
						continue
					}
					for _, ov := range overrides {
						p, err := base.WithOverride(ov)
						if err != nil {
							t.Fatalf("WithOverride(%v): %v", ov, err)
						}
						anyTCP := false
						for kind, raw := range hintsByKind {
							n++
							name := fmt.Sprintf("tcp=%s reveal=%v tor=%v i2p=%v override=%v hint=%s", tcp, reveal, torOn, i2pOn, ov, raw)
							// The rules.
							h := map[Kind]Handler{KindTCP: tcp, KindTor: HandlerTor, KindI2P: HandlerI2P}[kind]
							if v, ok := ov[string(kind)]; ok {
								h = Handler(v)
							}
							avail := map[Handler]bool{HandlerTCP: true, HandlerTor: torOn, HandlerI2P: i2pOn}[h]
							if h == HandlerTCP && avail {
								anyTCP = true
							}
							var wantStatus string
							var wantHandler Handler
							switch {
							case h == HandlerDisabled:
								src := "[connections] tcp = disabled"
								if _, ok := ov[string(kind)]; ok {
									src = "connections override " + string(kind) + ": disabled"
								}
								wantStatus = "bad hint: no handler registered (" + string(kind) + " hints disabled by " + src + ")"
							case !avail:
								wantStatus = "bad hint: no handler registered (" + string(h) + " is not enabled: [" + string(h) + "] enabled = false)"
							case h == HandlerTCP && kind != KindTCP:
								wantHandler, wantStatus = h, "bad hint: unrecognized TCP hint"
							case h == HandlerI2P && kind != KindI2P:
								wantHandler, wantStatus = h, "bad hint: unrecognized I2P hint"
							case h == HandlerTor && kind == KindI2P: // "i2p:ADDR" has no port
								wantHandler, wantStatus = h, "bad hint: unrecognized TCP/Tor hint"
							default:
								wantHandler = h
							}
							d := p.Decide(raw)
							if d.Status != wantStatus || d.Handler != wantHandler || d.Usable != (wantStatus == "") ||
								d.RevealsIP != (d.Usable && h == HandlerTCP) || d.Raw != raw || (d.Err == nil) != d.Usable {
								t.Errorf("%s:\n got %+v\nwant handler %q status %q", name, d, wantHandler, wantStatus)
							}
							if d.Usable && (d.Hint.Host == "" || d.Hint.Kind != kind) {
								t.Errorf("%s: usable decision with hint %+v", name, d.Hint)
							}
							if !d.Usable && !errors.Is(d.Err, ErrBadHint) {
								t.Errorf("%s: Err %v does not wrap ErrBadHint", name, d.Err)
							}
						}
						if p.RevealsIP() != anyTCP {
							t.Errorf("tcp=%s reveal=%v tor=%v i2p=%v override=%v: RevealsIP() = %v, want %v",
								tcp, reveal, torOn, i2pOn, ov, p.RevealsIP(), anyTCP)
						}
					}
				}
			}
		}
	}
	if n < 300 {
		t.Fatalf("matrix ran only %d cases", n)
	}
}

func mustPolicy(t testing.TB, tcp Handler, reveal bool, conns map[string]string) Policy {
	t.Helper()
	p, err := NewPolicy(tcp, reveal, true, true)
	if err != nil {
		t.Fatal(err)
	}
	p, err = p.WithOverride(conns)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecide(t *testing.T) {
	direct := mustPolicy(t, HandlerTCP, true, nil)
	torMostly := mustPolicy(t, HandlerTor, false, nil)
	lan := mustPolicy(t, HandlerTor, false, map[string]string{"tcp": "tcp"})
	tests := []struct {
		p        Policy
		raw      string
		handler  Handler
		status   string
		host     string
		port     int
		reveals  bool
		sentinel error
	}{
		{p: direct, raw: "tcp:10.1.2.3:51298", handler: HandlerTCP, host: "10.1.2.3", port: 51298, reveals: true},
		{p: direct, raw: "10.1.2.3:51298", handler: HandlerTCP, host: "10.1.2.3", port: 51298, reveals: true},
		{p: direct, raw: "tcp:[::1]:7", handler: HandlerTCP, host: "::1", port: 7, reveals: true},
		{p: direct, raw: "foo:bar:1", status: "bad hint: no handler registered", sentinel: ErrUnknownHintType},
		{p: direct, raw: "[::1]:1234", status: "bad hint: no handler registered", sentinel: ErrUnknownHintType},
		{p: direct, raw: "nocolon", status: "bad hint: no colon", sentinel: ErrBadHint},
		{p: direct, raw: "tcp:exa_mple.com:1", handler: HandlerTCP, status: "bad hint: unrecognized TCP hint", sentinel: ErrBadHint},
		{p: direct, raw: "tcp:h:70000", handler: HandlerTCP, status: "bad hint: port out of range", sentinel: ErrPortRange},
		// [connections] tcp = tor: tcp hints are read by the Tor handler.
		{p: torMostly, raw: "tcp:example.com:80", handler: HandlerTor, host: "example.com", port: 80},
		{p: torMostly, raw: "example.com:80", handler: HandlerTor, host: "example.com", port: 80},
		{p: torMostly, raw: "tcp:8.8.8.8:80", handler: HandlerTor, host: "8.8.8.8", port: 80},
		{p: torMostly, raw: "tcp:100.64.0.1:80", handler: HandlerTor, host: "100.64.0.1", port: 80}, // CGNAT: not "private" to Python
		{p: torMostly, raw: "tcp:192.0.0.9:80", handler: HandlerTor, host: "192.0.0.9", port: 80},   // exception in 192.0.0.0/24
		{p: torMostly, raw: "tcp:010.1.2.3:80", handler: HandlerTor, host: "010.1.2.3", port: 80},   // not an IP to Python either
		{p: torMostly, raw: "tcp:[::1]:80", handler: HandlerTor, status: "bad hint: unrecognized TCP/Tor hint", sentinel: ErrBadHint},
		{p: torMostly, raw: "tcp:[2001:db8::1]:80", handler: HandlerTor, status: "bad hint: unrecognized TCP/Tor hint", sentinel: ErrBadHint},
		{p: torMostly, raw: "tcp:10.1.2.3:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 10.1.2.3", sentinel: ErrBadHint},
		{p: torMostly, raw: "tor:127.0.0.1:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 127.0.0.1", sentinel: ErrBadHint},
		{p: torMostly, raw: "tor:172.16.0.1:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 172.16.0.1", sentinel: ErrBadHint},
		{p: torMostly, raw: "tor:192.168.1.1:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 192.168.1.1", sentinel: ErrBadHint},
		{p: torMostly, raw: "tor:169.254.1.1:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 169.254.1.1", sentinel: ErrBadHint},
		{p: torMostly, raw: "tor:224.0.0.1:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 224.0.0.1", sentinel: ErrBadHint},
		{p: torMostly, raw: "tor:240.0.0.1:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 240.0.0.1", sentinel: ErrBadHint},
		{p: torMostly, raw: "tor:255.255.255.255:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 255.255.255.255", sentinel: ErrBadHint},
		{p: torMostly, raw: "tor:0.0.0.0:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 0.0.0.0", sentinel: ErrBadHint},
		{p: torMostly, raw: "tor:192.0.2.7:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 192.0.2.7", sentinel: ErrBadHint},
		{p: torMostly, raw: "tor:198.18.0.1:80", handler: HandlerTor, status: "bad hint: ignoring non-Tor-able ipaddr 198.18.0.1", sentinel: ErrBadHint},
		// Tor-mostly client with a LAN server override.
		{p: lan, raw: "tcp:10.1.2.3:51298", handler: HandlerTCP, host: "10.1.2.3", port: 51298, reveals: true},
		{p: lan, raw: "tor:abc.onion:80", handler: HandlerTor, host: "abc.onion", port: 80},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			d := tt.p.Decide(tt.raw)
			if d.Handler != tt.handler || d.Status != tt.status || d.Usable != (tt.status == "") || d.RevealsIP != tt.reveals {
				t.Fatalf("Decide(%q) = %+v\nwant handler %q status %q reveals %v", tt.raw, d, tt.handler, tt.status, tt.reveals)
			}
			if d.Usable && (d.Hint.Host != tt.host || d.Hint.Port != tt.port || d.Hint.Raw != tt.raw) {
				t.Errorf("Hint = %+v, want host %q port %d", d.Hint, tt.host, tt.port)
			}
			if !d.Usable && (!errors.Is(d.Err, tt.sentinel) || d.Err.Error() != d.Status) {
				t.Errorf("Err = %v, want %v with text = Status", d.Err, tt.sentinel)
			}
		})
	}
}

func TestDecisionString(t *testing.T) {
	p := mustPolicy(t, HandlerTor, false, nil)
	for raw, want := range map[string]string{
		"tcp:10.0.0.1:80": "tcp:10.0.0.1:80 via tor: bad hint: ignoring non-Tor-able ipaddr 10.0.0.1",
		"tor:abc.onion:1": "tor:abc.onion:1 via tor",
		"foo:bar":         "foo:bar: bad hint: no handler registered",
	} {
		if got := p.Decide(raw).String(); got != want {
			t.Errorf("Decide(%q).String() = %q, want %q", raw, got, want)
		}
	}
}

func TestZeroPolicy(t *testing.T) {
	var p Policy
	d := p.Decide("tcp:example.com:80")
	if d.Usable || d.Status != "bad hint: no handler registered" || p.RevealsIP() {
		t.Errorf("zero Policy: %+v, RevealsIP %v", d, p.RevealsIP())
	}
}

func TestDecideFURL(t *testing.T) {
	p := mustPolicy(t, HandlerTCP, true, nil)
	f, err := ParseFURL("pb://" + tub32 + "@tcp:a:1,foo:x,tcp:a:1,b:2,foo:x,tcp:b:2/" + swiss)
	if err != nil {
		t.Fatal(err)
	}
	got := p.DecideFURL(f)
	var raws []string
	for _, d := range got {
		raws = append(raws, d.Raw)
	}
	// Exact duplicates are tried once, at their first position; "b:2" and
	// "tcp:b:2" are different strings, as in Foolscap.
	if want := "tcp:a:1 foo:x b:2 tcp:b:2"; strings.Join(raws, " ") != want {
		t.Fatalf("DecideFURL order = %q, want %q", strings.Join(raws, " "), want)
	}
	if !got[0].Usable || got[1].Usable || !got[2].Usable || !got[2].Hint.Legacy {
		t.Errorf("decisions = %+v", got)
	}
	if ds := p.DecideFURL(FURL{TubID: tub32, Hints: []string{}, Name: "x"}); len(ds) != 0 {
		t.Errorf("empty hint list gave %v", ds)
	}
}

func FuzzDecide(f *testing.F) {
	for _, tt := range hintTests {
		f.Add(tt.in, uint8(0))
	}
	f.Add("tcp:10.0.0.1:80", uint8(1))
	f.Add("tor:8.8.8.8:80", uint8(1))
	f.Add("i2p:abc.i2p:1", uint8(5))
	policies := make([]Policy, 0, 8)
	for _, c := range []struct {
		tcp    Handler
		reveal bool
		conns  map[string]string
	}{
		{HandlerTCP, true, nil},
		{HandlerTor, false, nil},
		{HandlerDisabled, false, nil},
		{HandlerTor, false, map[string]string{"tcp": "tcp"}},
		{HandlerTCP, true, map[string]string{"tor": "disabled", "i2p": "tor"}},
		{HandlerTCP, true, map[string]string{"tcp": "i2p", "tor": "tcp"}},
	} {
		policies = append(policies, mustPolicy(f, c.tcp, c.reveal, c.conns))
	}
	policies = append(policies, Policy{})
	f.Fuzz(func(t *testing.T, raw string, which uint8) {
		p := policies[int(which)%len(policies)]
		d := p.Decide(raw)
		if d.Raw != raw || d.Hint.Raw != raw {
			t.Fatalf("Decide(%q) lost Raw: %+v", raw, d)
		}
		if d.Usable {
			if d.Status != "" || d.Err != nil || d.Handler == "" || d.Hint.Host == "" {
				t.Fatalf("usable decision %+v", d)
			}
			if d.RevealsIP != (d.Handler == HandlerTCP) {
				t.Fatalf("RevealsIP wrong in %+v", d)
			}
			if d.Handler == HandlerTor && !torable(d.Hint.Host) {
				t.Fatalf("Tor would be asked for %q", d.Hint.Host)
			}
			if p.Handlers[d.Hint.Kind] != d.Handler {
				t.Fatalf("handler %q is not the policy's for kind %q", d.Handler, d.Hint.Kind)
			}
			return
		}
		if d.RevealsIP || d.Err == nil || d.Status != d.Err.Error() || !strings.HasPrefix(d.Status, "bad hint: ") {
			t.Fatalf("unusable decision %+v", d)
		}
		// A hint the kind's own handler parses is unusable only because the
		// policy routes it elsewhere or disables it.
		if h, err := ParseHint(raw); err == nil && p.Handlers[h.Kind] == Handler(h.Kind) && p.Available[Handler(h.Kind)] {
			if h.Kind != KindTor || torable(h.Host) {
				t.Fatalf("ParseHint accepts %q but Decide says %q", raw, d.Status)
			}
		}
	})
}

func BenchmarkDecide(b *testing.B) {
	p := mustPolicy(b, HandlerTor, false, map[string]string{"tcp": "tcp"})
	for _, raw := range []string{"tcp:10.1.2.3:51298", "tor:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuv.onion:3457", "foo:bar:1"} {
		b.Run(strings.SplitN(raw, ":", 2)[0], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := p.Decide(raw); d.Raw != raw {
					b.Fatal(d)
				}
			}
		})
	}
}
