package hints

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
)

// hintTests covers every hint form of docs/foolscap-protocol.md §1.2, parsed with the
// grammar of each kind's own handler.
var hintTests = []struct {
	in      string
	want    Hint   // Raw is filled in from in
	wantErr string // exact HintError.Error()
	is      error
	addr    string // want Addr(), when no error
}{
	// tcp
	{in: "tcp:127.0.0.1:1234", want: Hint{Kind: KindTCP, Host: "127.0.0.1", Port: 1234}, addr: "127.0.0.1:1234"},
	{in: "tcp:example.com:1234", want: Hint{Kind: KindTCP, Host: "example.com", Port: 1234}, addr: "example.com:1234"},
	{in: "tcp:Ex-am.ple.COM:1", want: Hint{Kind: KindTCP, Host: "Ex-am.ple.COM", Port: 1}, addr: "Ex-am.ple.COM:1"},
	{in: "tcp:[::1]:1234", want: Hint{Kind: KindTCP, Host: "::1", Port: 1234}, addr: "[::1]:1234"},
	{in: "tcp:[fe80::1%eth0]:1234", want: Hint{Kind: KindTCP, Host: "fe80::1%eth0", Port: 1234}, addr: "[fe80::1%eth0]:1234"},
	{in: "tcp:[::ffff:1.2.3.4]:1234", want: Hint{Kind: KindTCP, Host: "::ffff:1.2.3.4", Port: 1234}, addr: "[::ffff:1.2.3.4]:1234"},
	{in: "tcp:[::ffff:1234.5.6.7]:1", want: Hint{Kind: KindTCP, Host: "::ffff:1234.5.6.7", Port: 1}, addr: "[::ffff:1234.5.6.7]:1"},
	{in: "tcp:[0%0]:0", want: Hint{Kind: KindTCP, Host: "0%0", Port: 0}, addr: "0%0:0"}, // found by FuzzParseHint
	{in: "tcp:[2001:DB8::A]:443", want: Hint{Kind: KindTCP, Host: "2001:DB8::A", Port: 443}, addr: "[2001:DB8::A]:443"},
	{in: "tcp:example.com:0080", want: Hint{Kind: KindTCP, Host: "example.com", Port: 80}, addr: "example.com:80"},
	{in: "tcp:example.com:65535", want: Hint{Kind: KindTCP, Host: "example.com", Port: 65535}, addr: "example.com:65535"},
	{in: "tcp:example.com:0", want: Hint{Kind: KindTCP, Host: "example.com", Port: 0}, addr: "example.com:0"},
	{in: "tcp:999.1.1.1:1", want: Hint{Kind: KindTCP, Host: "999.1.1.1", Port: 1}, addr: "999.1.1.1:1"},
	{in: "tcp:example.com:1\n", want: Hint{Kind: KindTCP, Host: "example.com", Port: 1}, addr: "example.com:1"},
	{in: "tcp:example.com:99999999", wantErr: `hints: parse hint "tcp:example.com:99999999": bad hint: port out of range`, is: ErrPortRange},
	{in: "tcp:example.com:65536", wantErr: `hints: parse hint "tcp:example.com:65536": bad hint: port out of range`, is: ErrPortRange},
	{in: "tcp:host=example.com:port=1234", wantErr: `hints: parse hint "tcp:host=example.com:port=1234": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:exa_mple.com:1", wantErr: `hints: parse hint "tcp:exa_mple.com:1": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:example.com", wantErr: `hints: parse hint "tcp:example.com": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:example.com:", wantErr: `hints: parse hint "tcp:example.com:": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp::1", wantErr: `hints: parse hint "tcp::1": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:::1:1", wantErr: `hints: parse hint "tcp:::1:1": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:[]:1", wantErr: `hints: parse hint "tcp:[]:1": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:[fe80::1%]:1", wantErr: `hints: parse hint "tcp:[fe80::1%]:1": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:[fe80::1%eth_0]:1", wantErr: `hints: parse hint "tcp:[fe80::1%eth_0]:1": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:[::1:1", wantErr: `hints: parse hint "tcp:[::1:1": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:[1.2.3.4]:1", wantErr: `hints: parse hint "tcp:[1.2.3.4]:1": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:example.com:-1", wantErr: `hints: parse hint "tcp:example.com:-1": bad hint: unrecognized TCP hint`, is: ErrBadHint},
	{in: "tcp:example.com:\u0661\u0662", wantErr: "hints: parse hint \"tcp:example.com:\u0661\u0662\": bad hint: unrecognized TCP hint", is: ErrBadHint},
	{in: "TCP:example.com:1", wantErr: `hints: parse hint "TCP:example.com:1": bad hint: no handler registered`, is: ErrUnknownHintType},

	// legacy HOST:PORT
	{in: "127.0.0.1:1234", want: Hint{Kind: KindTCP, Host: "127.0.0.1", Port: 1234, Legacy: true}, addr: "127.0.0.1:1234"},
	{in: "example.com:1234", want: Hint{Kind: KindTCP, Host: "example.com", Port: 1234, Legacy: true}, addr: "example.com:1234"},
	{in: "example.com:0001234", want: Hint{Kind: KindTCP, Host: "example.com", Port: 1234, Legacy: true}, addr: "example.com:1234"},
	{in: "example.com:1234\n", want: Hint{Kind: KindTCP, Host: "example.com", Port: 1234, Legacy: true}, addr: "example.com:1234"},
	{in: "type:123", want: Hint{Kind: KindTCP, Host: "type", Port: 123, Legacy: true}, addr: "type:123"},
	{in: "tor:80", want: Hint{Kind: KindTCP, Host: "tor", Port: 80, Legacy: true}, addr: "tor:80"},
	{in: "i2p:7656", want: Hint{Kind: KindTCP, Host: "i2p", Port: 7656, Legacy: true}, addr: "i2p:7656"},
	{in: "example.com:99999999", wantErr: `hints: parse hint "example.com:99999999": bad hint: port out of range`, is: ErrPortRange},
	{in: "[::1]:1234", wantErr: `hints: parse hint "[::1]:1234": bad hint: no handler registered`, is: ErrUnknownHintType},
	{in: "exa_mple.com:1", wantErr: `hints: parse hint "exa_mple.com:1": bad hint: no handler registered`, is: ErrUnknownHintType},
	{in: "example.com:1:2", wantErr: `hints: parse hint "example.com:1:2": bad hint: no handler registered`, is: ErrUnknownHintType},

	// tor
	{in: "tor:abcdefghijklmnop.onion:80", want: Hint{Kind: KindTor, Host: "abcdefghijklmnop.onion", Port: 80}, addr: "abcdefghijklmnop.onion:80"},
	{in: "tor:8.8.8.8:443", want: Hint{Kind: KindTor, Host: "8.8.8.8", Port: 443}, addr: "8.8.8.8:443"},
	{in: "tor:10.0.0.1:443", want: Hint{Kind: KindTor, Host: "10.0.0.1", Port: 443}, addr: "10.0.0.1:443"}, // refused only by Decide
	{in: "tor:[::1]:80", wantErr: `hints: parse hint "tor:[::1]:80": bad hint: unrecognized TCP/Tor hint`, is: ErrBadHint},
	{in: "tor:abc.onion", wantErr: `hints: parse hint "tor:abc.onion": bad hint: unrecognized TCP/Tor hint`, is: ErrBadHint},
	{in: "tor:abc.onion:80:1", wantErr: `hints: parse hint "tor:abc.onion:80:1": bad hint: unrecognized TCP/Tor hint`, is: ErrBadHint},
	{in: "tor:ab_c.onion:80", wantErr: `hints: parse hint "tor:ab_c.onion:80": bad hint: unrecognized TCP/Tor hint`, is: ErrBadHint},

	// i2p
	{in: "i2p:abcdef.b32.i2p", want: Hint{Kind: KindI2P, Host: "abcdef.b32.i2p", Port: 0}, addr: "abcdef.b32.i2p:0"},
	{in: "i2p:abcdef.b32.i2p:3457", want: Hint{Kind: KindI2P, Host: "abcdef.b32.i2p", Port: 3457}, addr: "abcdef.b32.i2p:3457"},
	{in: "i2p:abcdef.b32.i2p:", wantErr: `hints: parse hint "i2p:abcdef.b32.i2p:": bad hint: unrecognized I2P hint`, is: ErrBadHint},
	{in: "i2p:", wantErr: `hints: parse hint "i2p:": bad hint: unrecognized I2P hint`, is: ErrBadHint},
	{in: "i2p:a~b.i2p", wantErr: `hints: parse hint "i2p:a~b.i2p": bad hint: unrecognized I2P hint`, is: ErrBadHint},

	// unknown types are skipped, not fatal
	{in: "foo:bar:1", wantErr: `hints: parse hint "foo:bar:1": bad hint: no handler registered`, is: ErrUnknownHintType},
	{in: "unix:/x", wantErr: `hints: parse hint "unix:/x": bad hint: no handler registered`, is: ErrUnknownHintType},
	{in: "systemd:fd=3", wantErr: `hints: parse hint "systemd:fd=3": bad hint: no handler registered`, is: ErrUnknownHintType},
	{in: ":1:2", wantErr: `hints: parse hint ":1:2": bad hint: no handler registered`, is: ErrUnknownHintType},
	{in: "nocolon", wantErr: `hints: parse hint "nocolon": bad hint: no colon`, is: ErrBadHint},
	{in: "", wantErr: `hints: parse hint "": bad hint: no colon`, is: ErrBadHint},
}

func TestParseHint(t *testing.T) {
	for _, tt := range hintTests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseHint(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseHint(%q) = %+v, want error %q", tt.in, got, tt.wantErr)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("ParseHint(%q) error:\n got %s\nwant %s", tt.in, err, tt.wantErr)
				}
				var he *HintError
				if !errors.As(err, &he) || he.Hint != tt.in {
					t.Errorf("error %#v is not a *HintError for the input", err)
				}
				if !errors.Is(err, ErrBadHint) || !errors.Is(err, tt.is) {
					t.Errorf("error %v does not match ErrBadHint and %v", err, tt.is)
				}
				if got.Raw != tt.in || got.Host != "" || got.Port != 0 {
					t.Errorf("ParseHint(%q) returned %+v with its error, want only Raw and Kind", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHint(%q): %v", tt.in, err)
			}
			want := tt.want
			want.Raw = tt.in
			if got != want {
				t.Fatalf("ParseHint(%q) = %+v, want %+v", tt.in, got, want)
			}
			if a := got.Addr(); a != tt.addr {
				t.Errorf("Addr() = %q, want %q", a, tt.addr)
			}
		})
	}
}

// TestParseHintKindOnError checks the Kind reported alongside errors, which
// callers use to say which hint type was skipped.
func TestParseHintKindOnError(t *testing.T) {
	for in, want := range map[string]Kind{
		"foo:bar:1":      "foo",
		"tcp:a_b:1":      KindTCP,
		"tor:[::1]:1":    KindTor,
		"i2p:a:b":        KindI2P,
		"nocolon":        "",
		"a:99999999":     KindTCP, // legacy, port too large
		"tcp:h:99999999": KindTCP,
	} {
		h, err := ParseHint(in)
		if err == nil || h.Kind != want {
			t.Errorf("ParseHint(%q) = %+v, %v; want Kind %q and an error", in, h, err, want)
		}
	}
}

func FuzzParseHint(f *testing.F) {
	for _, tt := range hintTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHint(s)
		if h.Raw != s {
			t.Fatalf("ParseHint(%q).Raw = %q", s, h.Raw)
		}
		if err != nil {
			if !errors.Is(err, ErrBadHint) {
				t.Fatalf("ParseHint(%q) error %v does not wrap ErrBadHint", s, err)
			}
			if !strings.HasPrefix(err.(*HintError).Err.Error(), "bad hint: ") {
				t.Fatalf("status %q lacks Foolscap's prefix", err.(*HintError).Err)
			}
			return
		}
		if h.Kind != KindTCP && h.Kind != KindTor && h.Kind != KindI2P {
			t.Fatalf("ParseHint(%q) accepted kind %q", s, h.Kind)
		}
		if h.Host == "" || h.Port < 0 || h.Port > 65535 {
			t.Fatalf("ParseHint(%q) = %+v", s, h)
		}
		// The dial address must split back into exactly Host and Port.
		host, port, err := net.SplitHostPort(h.Addr())
		if err != nil || host != h.Host || port != strconv.Itoa(h.Port) {
			t.Fatalf("Addr() %q of %+v splits to %q, %q, %v", h.Addr(), h, host, port, err)
		}
		// Re-writing the hint in canonical form parses to the same result.
		canon := string(h.Kind) + ":" + h.Host + ":" + strconv.Itoa(h.Port)
		if h.Kind == KindTCP && strings.ContainsAny(h.Host, ":%") {
			canon = "tcp:[" + h.Host + "]:" + strconv.Itoa(h.Port)
		}
		h2, err := ParseHint(canon)
		if err != nil || h2.Host != h.Host || h2.Port != h.Port || h2.Kind != h.Kind {
			t.Fatalf("canonical %q of %q parses to %+v, %v", canon, s, h2, err)
		}
	})
}
