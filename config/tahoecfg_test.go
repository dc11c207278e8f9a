package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/hints"
)

// badCfgFiles is the expected-error table for testdata/bad/*.cfg. Every
// file in that directory must be listed here, and vice versa.
var badCfgFiles = []struct {
	file  string
	class error
	msg   string
}{
	{"bad-boolean.cfg", ErrInvalidValue,
		"config: testdata/bad/bad-boolean.cfg:2: [node] reveal-ip-address: not a boolean: \"maybe\" (use true/false, yes/no, on/off or 1/0)"},
	{"client-unknown-key.cfg", ErrUnknownKey,
		"config: testdata/bad/client-unknown-key.cfg:3: [client] introducers.furl: not a valid key in [client] (valid: helper.furl, introducer.furl, key_generator.furl, mutable.format, peers.preferred, shares.happy, shares.needed, shares.total, shares._max_immutable_segment_size_for_testing, storage.plugins, force_foolscap)"},
	{"connections-i2p-key.cfg", ErrUnknownKey,
		"config: testdata/bad/connections-i2p-key.cfg:3: [connections] i2p: not a valid key in [connections] (valid: tcp)"},
	{"duplicate-section.cfg", ErrDuplicate,
		"config: testdata/bad/duplicate-section.cfg:5: [node] section already defined at line 1"},
	{"i2p-sam-launch.cfg", ErrConflict,
		"config: testdata/bad/i2p-sam-launch.cfg:2: [i2p] sam.port: must not set both sam.port and launch"},
	{"introducer-bad-furl.cfg", ErrInvalidValue,
		"config: testdata/bad/introducer-bad-furl.cfg:2: [client] introducer.furl: hints: parse FURL \"pbu://ok45ssoklj4y7eok5c3xkmj@tcp:tahoe.example:44801/REDACTED\": unknown FURL prefix"},
	{"introducer-hash.cfg", ErrInvalidValue,
		"config: testdata/bad/introducer-hash.cfg:2: [client] introducer.furl: contains a '#' character (comments must be on their own line)"},
	{"introducer-none.cfg", ErrInvalidValue,
		"config: testdata/bad/introducer-none.cfg:2: [client] introducer.furl: invalid 'introducer.furl = None': to disable it omit the key entirely"},
	{"nickname-percent.cfg", ErrInvalidValue,
		"config: testdata/bad/nickname-percent.cfg:2: [node] nickname: '%' must be followed by '%' or '(', found: \"%\" (write %% for a literal %)"},
	{"port-disabled-only.cfg", ErrConflict,
		"config: testdata/bad/port-disabled-only.cfg:2: [node] tub.port: tub.port is disabled, but not tub.location"},
	{"port-empty.cfg", ErrInvalidValue,
		"config: testdata/bad/port-empty.cfg:2: [node] tub.port: tub.port must not be empty"},
	{"port-zero.cfg", ErrInvalidValue,
		"config: testdata/bad/port-zero.cfg:2: [node] tub.port: tub.port cannot be 0: you must choose"},
	{"privacy-location-auto.cfg", ErrPrivacy,
		"config: testdata/bad/privacy-location-auto.cfg:4: [node] tub.location: tub.location uses AUTO"},
	{"privacy-location-legacy.cfg", ErrPrivacy,
		"config: testdata/bad/privacy-location-legacy.cfg:4: [node] tub.location: tub.location includes tcp: hint \"example.com:3457\""},
	{"privacy-location-missing.cfg", ErrPrivacy,
		"config: testdata/bad/privacy-location-missing.cfg:2: [node] reveal-ip-address: tub.location is unset, which means AUTO (publish local IP addresses); set it to disabled or to tor:/i2p: hints"},
	{"privacy-location-tcp.cfg", ErrPrivacy,
		"config: testdata/bad/privacy-location-tcp.cfg:4: [node] tub.location: tub.location includes tcp: hint \"tcp:10.0.0.1:3457\""},
	{"privacy-tcp-default.cfg", ErrPrivacy,
		"config: testdata/bad/privacy-tcp-default.cfg:2: [node] reveal-ip-address: [connections] tcp is unset and defaults to tcp; set it to tor or disabled: hints: Privacy requested with `reveal-IP-address = false` but `tcp = tcp` conflicts with this."},
	{"privacy-tcp-tcp.cfg", ErrPrivacy,
		"config: testdata/bad/privacy-tcp-tcp.cfg:6: [connections] tcp: tcp = tcp, must be set to tor or disabled: hints: Privacy requested with `reveal-IP-address = false` but `tcp = tcp` conflicts with this."},
	{"section-case.cfg", ErrUnknownKey,
		"config: testdata/bad/section-case.cfg:1: [Node] unknown section; section names are case-sensitive and must be written exactly [node]"},
	{"tcp-i2p.cfg", ErrInvalidValue,
		"config: testdata/bad/tcp-i2p.cfg:2: [connections] tcp: i2p cannot be used for tcp hints (I2P cannot reach normal TCP ports); use tcp, tor or disabled"},
	{"tcp-tor-disabled.cfg", ErrConflict,
		"config: testdata/bad/tcp-tor-disabled.cfg:4: [connections] tcp: tcp = tor, but [tor] enabled = false makes the tor handler unavailable"},
	{"tcp-unknown.cfg", ErrInvalidValue,
		"config: testdata/bad/tcp-unknown.cfg:2: [connections] tcp: hints: unknown handler type \"carrier-pigeon\" (want tcp, tor, i2p or disabled)"},
	{"timeout-nan.cfg", ErrInvalidValue,
		"config: testdata/bad/timeout-nan.cfg:2: [node] timeout.keepalive: not a number of seconds: \"soon\""},
	{"timeout-negative.cfg", ErrInvalidValue,
		"config: testdata/bad/timeout-negative.cfg:2: [node] timeout.disconnect: negative number of seconds: \"-5\""},
	{"tor-onion-incomplete.cfg", ErrMissing,
		"config: testdata/bad/tor-onion-incomplete.cfg:2: [tor] onion: onion = true, but onion.external_port = is missing"},
	{"unknown-node-key.cfg", ErrUnknownKey,
		"config: testdata/bad/unknown-node-key.cfg:3: [node] favourite-colour: not a valid key in [node] (valid: log_gatherer.furl, nickname, reveal-ip-address, tempdir, timeout.disconnect, timeout.keepalive, tub.location, tub.port, web.port, web.static)"},
}

func TestBadTahoeCfgFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.cfg")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, tt := range badCfgFiles {
		listed[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "bad", tt.file)
			_, err := LoadTahoeConfig(path)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.msg {
				t.Errorf("error\n got %s\nwant %s", err, tt.msg)
			}
			if !errors.Is(err, tt.class) {
				t.Errorf("error is not %v", tt.class)
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path || fe.Line == 0 {
				t.Errorf("error %#v does not name %s and a line", err, path)
			}
		})
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no entry in badCfgFiles", f)
		}
	}
}

func TestPrivacyErrorUnwrapsToHints(t *testing.T) {
	_, err := ParseTahoeConfig("t.cfg", []byte("[node]\nreveal-IP-address = false\ntub.port = disabled\ntub.location = disabled\n"))
	var pe *hints.PrivacyError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPrivacy) {
		t.Fatalf("error %v: want *hints.PrivacyError and ErrPrivacy", err)
	}
}

func TestTahoeConfigDefaults(t *testing.T) {
	c, err := LoadTahoeConfig(filepath.Join(t.TempDir(), "missing.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.RevealIP || c.TCP != hints.HandlerTCP || !c.Tor.Enabled || !c.I2P.Enabled || c.Tor.Launch ||
		!c.Listening || c.KeepAlive != 0 || c.Disconnect != 0 || c.IntroducerFURL != "" || c.Nickname != "" {
		t.Errorf("defaults: %+v", c)
	}
	if c.Policy.Handlers[hints.KindTCP] != hints.HandlerTCP {
		t.Errorf("default policy %+v", c.Policy)
	}
}

// The two examples of docs/tahoe-node-files.md §1, verbatim.
const (
	hideIPExample = `# client that hides its IP
[node]
nickname = alice
reveal-IP-address = false
tub.port = disabled
tub.location = disabled
[connections]
tcp = tor
[tor]
socks.port = tcp:127.0.0.1:9050
`
	oldIntroducerExample = `[client]
introducer.furl = pb://ok45ssoklj4y7eok5c3xkmj@tcp:tahoe.example:44801/ii3uumo
`
)

func TestTahoeConfigExamples(t *testing.T) {
	c, err := ParseTahoeConfig("tahoe.cfg", []byte(hideIPExample))
	if err != nil {
		t.Fatal(err)
	}
	if c.Nickname != "alice" || c.RevealIP || c.TCP != hints.HandlerTor || c.Listening ||
		c.Tor.SocksPort != "tcp:127.0.0.1:9050" || c.TubPort != "disabled" || c.TubLocation != "disabled" {
		t.Errorf("hide-ip example: %+v", c)
	}
	if c.Policy.Handlers[hints.KindTCP] != hints.HandlerTor || c.Policy.RevealIP {
		t.Errorf("hide-ip policy: %+v", c.Policy)
	}

	c, err = ParseTahoeConfig("tahoe.cfg", []byte(oldIntroducerExample))
	if err != nil {
		t.Fatal(err)
	}
	if c.IntroducerFURL != "pb://ok45ssoklj4y7eok5c3xkmj@tcp:tahoe.example:44801/ii3uumo" || c.IntroducerLine != 2 {
		t.Errorf("introducer: %q line %d", c.IntroducerFURL, c.IntroducerLine)
	}
}

func TestTahoeBooleans(t *testing.T) {
	for in, want := range map[string]bool{
		"true": true, "True": true, "YES": true, "on": true, "1": true,
		"false": false, "FALSE": false, "no": false, "Off": false, "0": false,
	} {
		c, err := ParseTahoeConfig("t.cfg", []byte("[tor]\nenabled = "+in+"\nlaunch = "+in+"\n"))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if c.Tor.Enabled != want || c.Tor.Launch != want {
			t.Errorf("%q: got enabled=%v launch=%v, want %v", in, c.Tor.Enabled, c.Tor.Launch, want)
		}
	}
	for _, in := range []string{"", "y", "n", "2", "tru", "enabled", "yes please"} {
		_, err := ParseTahoeConfig("t.cfg", []byte("[tor]\nenabled = "+in+"\n"))
		if !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%q: error %v, want ErrInvalidValue", in, err)
		}
	}
}

func TestTahoeTimeouts(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":     0,
		"240":  240 * time.Second,
		"1800": 30 * time.Minute,
		"1.5":  1500 * time.Millisecond,
		".25":  250 * time.Millisecond,
		"+7":   7 * time.Second,
		"0":    0,
	} {
		c, err := ParseTahoeConfig("t.cfg", []byte("[node]\ntimeout.keepalive = "+in+"\ntimeout.disconnect = "+in+"\n"))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if c.KeepAlive != want || c.Disconnect != want {
			t.Errorf("%q: got %v/%v, want %v", in, c.KeepAlive, c.Disconnect, want)
		}
	}
	for _, in := range []string{"inf", "nan", "0x10", "1e400", "1_000", "ten", "-1", "1.2.3", "."} {
		_, err := ParseTahoeConfig("t.cfg", []byte("[node]\ntimeout.keepalive = "+in+"\n"))
		if !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%q: error %v, want ErrInvalidValue", in, err)
		}
	}
}

func TestTahoeConfigValid(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(*TahoeConfig) bool
	}{
		{"other sections ignored", "[storage]\nenabled = true\nanything = goes\n[helper]\nenabled = false\n",
			func(c *TahoeConfig) bool { return c.RevealIP }},
		{"ignored valid keys accepted", "[node]\nweb.port = tcp:3456:interface=127.0.0.1\nweb.static = public_html\n" +
			"tempdir = tmp\nlog_gatherer.furl = pb://a@b/c\n[client]\nshares.needed = 3\nhelper.furl = None\n",
			func(c *TahoeConfig) bool { return true }},
		{"tcp value lower-cased", "[connections]\ntcp = DISABLED\n",
			func(c *TahoeConfig) bool { return c.TCP == hints.HandlerDisabled }},
		{"reveal false with tor location", "[node]\nreveal-ip-address = off\ntub.port = tcp:3457\n" +
			"tub.location = tor:abcdefghijklmnop.onion:3457,i2p:abc.b32.i2p\n[connections]\ntcp = tor\n",
			func(c *TahoeConfig) bool { return !c.RevealIP && c.Listening }},
		{"tor onion complete", "[tor]\nonion = true\ncontrol.port = tcp:localhost:9051\nonion.local_port = 3457\n" +
			"onion.external_port = 3457\nonion.private_key_file = private/tor_onion.privkey\n",
			func(c *TahoeConfig) bool { return c.Tor.Onion && c.Tor.ControlPort == "tcp:localhost:9051" }},
		{"i2p", "[i2p]\nenabled = true\nlaunch = true\ni2p.configdir = /var/lib/i2p\ni2p.executable = /usr/bin/i2p\n",
			func(c *TahoeConfig) bool { return c.I2P.Launch && c.I2P.ConfigDir == "/var/lib/i2p" }},
		{"empty introducer.furl is unset", "[client]\nintroducer.furl =\n",
			func(c *TahoeConfig) bool { return c.IntroducerFURL == "" }},
		{"interpolation", "[node]\nnickname = 100%% %(WEB.static)s\nweb.static = site\n",
			func(c *TahoeConfig) bool { return c.Nickname == "100% site" }},
		{"multi-line nickname", "[node]\nnickname = a\n  b\n",
			func(c *TahoeConfig) bool { return c.Nickname == "a\nb" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseTahoeConfig("t.cfg", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestTahoeConfigUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A directory where a file is expected cannot be read.
	path := filepath.Join(dir, "tahoe.cfg")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := LoadTahoeConfig(path)
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != path {
		t.Fatalf("error %v, want *FileError for %s", err, path)
	}
}
