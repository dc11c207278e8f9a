package config

import (
	"errors"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tubfarm/tubfarm/hints"
)

// A TahoeConfig is the part of tahoe.cfg that governs outbound connections
// and introducers. The zero value is not meaningful; obtain one from
// [ParseTahoeConfig] or [LoadTahoeConfig] (a missing or empty tahoe.cfg
// gives Tahoe's defaults, which [DefaultTahoeConfig] returns).
type TahoeConfig struct {
	// Path is the file the configuration was read from.
	Path string

	// Nickname is [node] nickname; "" if unset (Tahoe then displays
	// "<unspecified>").
	Nickname string

	// RevealIP is [node] reveal-IP-address (default true). When false,
	// every node-wide setting that could reveal the node's IP address is
	// an error (ErrPrivacy), as in Tahoe. As in Tahoe, a servers.yaml
	// connections: override may still route one server's tcp hints over
	// direct TCP; that server's policy then reports RevealsIP.
	RevealIP bool

	// TubPort and TubLocation are [node] tub.port and tub.location as
	// written ("" if unset). Listening is false only when both are
	// "disabled" (the usual client setting).
	TubPort     string
	TubLocation string
	Listening   bool

	// KeepAlive and Disconnect are [node] timeout.keepalive and
	// timeout.disconnect. Zero means unset: Foolscap then pings after 4
	// minutes of idleness and never disconnects for idleness.
	KeepAlive  time.Duration
	Disconnect time.Duration

	// TCP is [connections] tcp, lower-cased: HandlerTCP (default),
	// HandlerTor or HandlerDisabled.
	TCP hints.Handler

	// Tor and I2P are the [tor] and [i2p] sections.
	Tor TorConfig
	I2P I2PConfig

	// ForceFoolscap is [client] force_foolscap (default false): use
	// Foolscap even with servers that announce HTTPS storage NURLs.
	ForceFoolscap bool

	// IntroducerFURL is the deprecated [client] introducer.furl ("" if
	// unset); it defines the introducer with petname "default".
	// IntroducerLine is its line in Path.
	IntroducerFURL string
	IntroducerLine int

	// Policy is the node-wide connection policy built from TCP, RevealIP,
	// Tor.Enabled and I2P.Enabled. Per-server policies derive from it.
	Policy hints.Policy
}

// TorConfig is the [tor] section. Endpoint strings are Twisted endpoint
// descriptions, kept as written; "" means unset.
type TorConfig struct {
	Enabled     bool   // enabled (default true)
	Launch      bool   // launch: start a private tor
	SocksPort   string // socks.port, e.g. "tcp:127.0.0.1:9050"
	ControlPort string // control.port, e.g. "unix:/var/run/tor/control"
	Executable  string // tor.executable

	// Server-side keys, accepted and checked for consistency (onion = true
	// requires the three others and launch or control.port) but not used.
	Onion               bool
	OnionLocalPort      string
	OnionExternalPort   string
	OnionPrivateKeyFile string
}

// I2PConfig is the [i2p] section; "" means unset.
type I2PConfig struct {
	Enabled    bool   // enabled (default true)
	Launch     bool   // launch
	SAMPort    string // sam.port (Tahoe's default is tcp:127.0.0.1:7656)
	ConfigDir  string // i2p.configdir
	Executable string // i2p.executable

	// Server-side keys, accepted and checked but not used.
	Dest               bool
	DestPort           string
	DestPrivateKeyFile string
}

// validKeys lists, for each section this package reads, every key Tahoe
// accepts there (node.py _common_valid_config and client.py
// _client_config, 1.12–HEAD). Keys we do not use are accepted and ignored.
var validKeys = map[string][]string{
	"node": {"log_gatherer.furl", "nickname", "reveal-ip-address", "tempdir",
		"timeout.disconnect", "timeout.keepalive", "tub.location", "tub.port",
		"web.port", "web.static"},
	"connections": {"tcp"},
	"tor": {"control.port", "enabled", "launch", "socks.port", "tor.executable",
		"onion", "onion.local_port", "onion.external_port", "onion.private_key_file"},
	"i2p": {"enabled", "i2p.configdir", "i2p.executable", "launch", "sam.port",
		"dest", "dest.port", "dest.private_key_file"},
	"client": {"helper.furl", "introducer.furl", "key_generator.furl", "mutable.format",
		"peers.preferred", "shares.happy", "shares.needed", "shares.total",
		"shares._max_immutable_segment_size_for_testing", "storage.plugins", "force_foolscap"},
}

// DefaultTahoeConfig returns the configuration of an empty tahoe.cfg.
func DefaultTahoeConfig() *TahoeConfig {
	c, err := ParseTahoeConfig("tahoe.cfg", nil)
	if err != nil {
		// An empty file is always valid; this can only fail if the hints
		// package rejects Tahoe's default policy.
		panic("config: default tahoe.cfg rejected: " + err.Error())
	}
	return c
}

// LoadTahoeConfig reads and parses the tahoe.cfg at path. A missing file
// is an empty configuration, as in Tahoe.
func LoadTahoeConfig(path string) (*TahoeConfig, error) {
	data, err := readFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, &FileError{Path: path, Err: err}
	}
	return ParseTahoeConfig(path, data)
}

// ParseTahoeConfig parses data, the contents of the tahoe.cfg at path (used
// in errors only). It applies Tahoe's checks (unknown keys in [node],
// [connections], [tor], [i2p] and [client], booleans, tub.port/tub.location
// consistency, reveal-IP-address, introducer.furl) and returns the first
// problem as a *[FileError]. Sections other than those five are not read.
func ParseTahoeConfig(path string, data []byte) (*TahoeConfig, error) {
	ini, err := parseINI(path, data)
	if err != nil {
		return nil, err
	}
	p := &cfgParser{ini: ini}
	return p.parse()
}

type cfgParser struct {
	ini *iniFile
}

func (p *cfgParser) errAt(section, key string, err error) *FileError {
	line := 0
	if s := p.ini.section(section); s != nil {
		line = s.line
		if k := s.byKey[key]; k != nil {
			line = k.line
		}
	}
	return &FileError{Path: p.ini.path, Line: line, Section: section, Field: key, Err: err}
}

func (p *cfgParser) str(section, key string) (string, error) {
	v, _, err := p.ini.get(section, key)
	return v, err
}

// boolean implements ConfigParser.getboolean: 1/yes/true/on and
// 0/no/false/off, case-insensitively; anything else (including "") is an
// error.
func (p *cfgParser) boolean(section, key string, def bool) (bool, error) {
	v, k, err := p.ini.get(section, key)
	if err != nil || k == nil {
		return def, err
	}
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, p.errAt(section, key, classErr(ErrInvalidValue,
		"not a boolean: "+quote(v)+" (use true/false, yes/no, on/off or 1/0)"))
}

// seconds parses a timeout in seconds. Tahoe passes the value to int();
// this also accepts a decimal fraction ("1.5").
func (p *cfgParser) seconds(section, key string) (time.Duration, error) {
	v, k, err := p.ini.get(section, key)
	if err != nil || k == nil || v == "" { // Tahoe: `if value:`
		return 0, err
	}
	if strings.HasPrefix(v, "-") && isDecimal(v[1:]) {
		return 0, p.errAt(section, key, classErr(ErrInvalidValue, "negative number of seconds: "+quote(v)))
	}
	f, perr := strconv.ParseFloat(v, 64)
	if !isDecimal(strings.TrimPrefix(v, "+")) || perr != nil {
		return 0, p.errAt(section, key, classErr(ErrInvalidValue, "not a number of seconds: "+quote(v)))
	}
	if f > float64(math.MaxInt64)/float64(time.Second) {
		return 0, p.errAt(section, key, classErr(ErrInvalidValue, "number of seconds too large: "+quote(v)))
	}
	return time.Duration(f * float64(time.Second)), nil
}

func (p *cfgParser) parse() (*TahoeConfig, error) {
	if err := p.checkKeys(); err != nil {
		return nil, err
	}
	c := &TahoeConfig{Path: p.ini.path}
	var err error
	if c.Nickname, err = p.str("node", "nickname"); err != nil {
		return nil, err
	}
	if c.RevealIP, err = p.boolean("node", "reveal-ip-address", true); err != nil {
		return nil, err
	}
	if c.ForceFoolscap, err = p.boolean("client", "force_foolscap", false); err != nil {
		return nil, err
	}
	if c.KeepAlive, err = p.seconds("node", "timeout.keepalive"); err != nil {
		return nil, err
	}
	if c.Disconnect, err = p.seconds("node", "timeout.disconnect"); err != nil {
		return nil, err
	}
	if err := p.parseTor(&c.Tor); err != nil {
		return nil, err
	}
	if err := p.parseI2P(&c.I2P); err != nil {
		return nil, err
	}
	// Tahoe builds the connection handlers (and checks tcp = tcp against
	// reveal-IP-address) before the main Tub's port and location.
	if err := p.parseConnections(c); err != nil {
		return nil, err
	}
	if err := p.parseTub(c); err != nil {
		return nil, err
	}
	if err := p.parseIntroducer(c); err != nil {
		return nil, err
	}
	return c, nil
}

// checkKeys rejects keys Tahoe would reject in the sections we read, and
// sections that differ from ours only in case (configparser section names
// are case-sensitive, so Tahoe would reject "[Node]" as unknown, and
// ignoring it here would silently drop settings).
func (p *cfgParser) checkKeys() error {
	for _, s := range p.ini.sections {
		valid, ours := validKeys[s.name]
		if !ours {
			if _, caseOnly := validKeys[strings.ToLower(pyStrip(s.name))]; caseOnly {
				return &FileError{Path: p.ini.path, Line: s.line, Section: s.name, Err: classErr(ErrUnknownKey,
					"unknown section; section names are case-sensitive and must be written exactly ["+strings.ToLower(pyStrip(s.name))+"]")}
			}
			continue
		}
		for _, k := range s.keys {
			if !contains(valid, k.name) {
				return &FileError{Path: p.ini.path, Line: k.line, Section: s.name, Field: k.name,
					Err: classErr(ErrUnknownKey, "not a valid key in ["+s.name+"] (valid: "+strings.Join(valid, ", ")+")")}
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (p *cfgParser) parseTor(t *TorConfig) error {
	var err error
	if t.Enabled, err = p.boolean("tor", "enabled", true); err != nil {
		return err
	}
	if t.Launch, err = p.boolean("tor", "launch", false); err != nil {
		return err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"socks.port", &t.SocksPort}, {"control.port", &t.ControlPort}, {"tor.executable", &t.Executable},
		{"onion.local_port", &t.OnionLocalPort}, {"onion.external_port", &t.OnionExternalPort},
		{"onion.private_key_file", &t.OnionPrivateKeyFile},
	} {
		if *f.dst, err = p.str("tor", f.key); err != nil {
			return err
		}
	}
	if t.Onion, err = p.boolean("tor", "onion", false); err != nil {
		return err
	}
	// tor_provider.py check_onion_config.
	if t.Onion {
		if !t.Launch && t.ControlPort == "" {
			return p.errAt("tor", "onion", classErr(ErrConflict, "onion = true, but we have neither launch = true nor control.port ="))
		}
		for _, req := range []struct{ key, val string }{
			{"onion.local_port", t.OnionLocalPort}, {"onion.external_port", t.OnionExternalPort},
			{"onion.private_key_file", t.OnionPrivateKeyFile},
		} {
			if req.val == "" {
				return p.errAt("tor", "onion", classErr(ErrMissing, "onion = true, but "+req.key+" = is missing"))
			}
		}
	}
	return nil
}

func (p *cfgParser) parseI2P(c *I2PConfig) error {
	var err error
	if c.Enabled, err = p.boolean("i2p", "enabled", true); err != nil {
		return err
	}
	if c.Launch, err = p.boolean("i2p", "launch", false); err != nil {
		return err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"sam.port", &c.SAMPort}, {"i2p.configdir", &c.ConfigDir}, {"i2p.executable", &c.Executable},
		{"dest.port", &c.DestPort}, {"dest.private_key_file", &c.DestPrivateKeyFile},
	} {
		if *f.dst, err = p.str("i2p", f.key); err != nil {
			return err
		}
	}
	if c.Dest, err = p.boolean("i2p", "dest", false); err != nil {
		return err
	}
	// i2p_provider.py: "tahoe.cfg [i2p] must not set both sam.port and
	// launch" (raised whenever the handler or a destination is built).
	if c.SAMPort != "" && c.Launch {
		return p.errAt("i2p", "sam.port", classErr(ErrConflict, "must not set both sam.port and launch"))
	}
	if c.Dest {
		if c.SAMPort == "" && !c.Launch && c.ConfigDir == "" {
			return p.errAt("i2p", "dest", classErr(ErrConflict, "dest = true, but we have neither sam.port = nor launch = true nor i2p.configdir ="))
		}
		for _, req := range []struct{ key, val string }{
			{"dest.port", c.DestPort}, {"dest.private_key_file", c.DestPrivateKeyFile},
		} {
			if req.val == "" {
				return p.errAt("i2p", "dest", classErr(ErrMissing, "dest = true, but "+req.key+" = is missing"))
			}
		}
	}
	return nil
}

func (p *cfgParser) parseConnections(c *TahoeConfig) error {
	v, k, err := p.ini.get("connections", "tcp")
	if err != nil {
		return err
	}
	c.TCP = hints.HandlerTCP
	if k != nil {
		h, herr := hints.ParseHandler(strings.ToLower(v))
		switch {
		case herr != nil:
			return p.errAt("connections", "tcp", wrapClass(ErrInvalidValue, "", herr))
		case h == hints.HandlerI2P:
			return p.errAt("connections", "tcp", classErr(ErrInvalidValue,
				"i2p cannot be used for tcp hints (I2P cannot reach normal TCP ports); use tcp, tor or disabled"))
		case h != hints.HandlerTCP && h != hints.HandlerTor && h != hints.HandlerDisabled:
			return p.errAt("connections", "tcp", classErr(ErrInvalidValue,
				"unknown handler type "+quote(v)+"; use tcp, tor or disabled"))
		case h == hints.HandlerTor && !c.Tor.Enabled:
			return p.errAt("connections", "tcp", classErr(ErrConflict,
				"tcp = tor, but [tor] enabled = false makes the tor handler unavailable"))
		}
		c.TCP = h
	}
	pol, perr := hints.NewPolicy(c.TCP, c.RevealIP, c.Tor.Enabled, c.I2P.Enabled)
	if perr != nil {
		var pe *hints.PrivacyError
		if errors.As(perr, &pe) {
			if k == nil {
				return p.errAt("node", "reveal-ip-address", wrapClass(ErrPrivacy,
					"[connections] tcp is unset and defaults to tcp; set it to tor or disabled", perr))
			}
			return p.errAt("connections", "tcp", wrapClass(ErrPrivacy, "tcp = tcp, must be set to tor or disabled", perr))
		}
		return p.errAt("connections", "tcp", wrapClass(ErrInvalidValue, "", perr))
	}
	c.Policy = pol
	return nil
}

// parseTub follows node.py _tub_portlocation.
func (p *cfgParser) parseTub(c *TahoeConfig) error {
	port, pk, err := p.ini.get("node", "tub.port")
	if err != nil {
		return err
	}
	loc, lk, err := p.ini.get("node", "tub.location")
	if err != nil {
		return err
	}
	port, loc = pyStrip(port), pyStrip(loc)
	c.TubPort, c.TubLocation = port, loc
	if pk != nil && port == "" {
		return p.errAt("node", "tub.port", classErr(ErrInvalidValue, "tub.port must not be empty"))
	}
	if lk != nil && loc == "" {
		return p.errAt("node", "tub.location", classErr(ErrInvalidValue, "tub.location must not be empty"))
	}
	portOff, locOff := port == "disabled", loc == "disabled"
	switch {
	case portOff && locOff:
		return nil
	case portOff:
		return p.errAt("node", "tub.port", classErr(ErrConflict, "tub.port is disabled, but not tub.location"))
	case locOff:
		return p.errAt("node", "tub.location", classErr(ErrConflict, "tub.location is disabled, but not tub.port"))
	}
	c.Listening = true
	if pk != nil {
		for _, one := range strings.Split(port, ",") {
			if isDigits(one) {
				one = "tcp:" + strings.TrimLeft(one, "0")
				if one == "tcp:" {
					one = "tcp:0"
				}
			}
			switch one {
			case "0", "tcp:0", "tcp:port=0", "tcp:0:interface=127.0.0.1":
				return p.errAt("node", "tub.port", classErr(ErrInvalidValue, "tub.port cannot be 0: you must choose"))
			}
		}
	}
	if c.RevealIP {
		return nil
	}
	if lk == nil {
		return p.errAt("node", "reveal-ip-address", classErr(ErrPrivacy,
			"tub.location is unset, which means AUTO (publish local IP addresses); set it to disabled or to tor:/i2p: hints"))
	}
	for _, h := range strings.Split(loc, ",") {
		if h == "AUTO" {
			return p.errAt("node", "tub.location", classErr(ErrPrivacy, "tub.location uses AUTO"))
		}
		// Foolscap's convert_legacy_hint turns HOST:PORT into tcp:HOST:PORT;
		// ParseHint does the same and reports the Kind even on error.
		hint, _ := hints.ParseHint(h)
		if hint.Kind == hints.KindTCP {
			return p.errAt("node", "tub.location", classErr(ErrPrivacy, "tub.location includes tcp: hint "+quote(h)))
		}
	}
	return nil
}

// isDecimal reports whether s is DIGITS, DIGITS.DIGITS*, or .DIGITS in
// ASCII.
func isDecimal(s string) bool {
	i, f, dot := strings.Cut(s, ".")
	if !dot {
		return isDigits(i)
	}
	return (i == "" || isDigits(i)) && (f == "" || isDigits(f)) && i+f != ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseIntroducer follows node.py get_introducer_configuration for the
// deprecated [client] introducer.furl.
func (p *cfgParser) parseIntroducer(c *TahoeConfig) error {
	v, k, err := p.ini.get("client", "introducer.furl")
	if err != nil || k == nil || v == "" {
		return err
	}
	if v == "None" {
		return p.errAt("client", "introducer.furl", classErr(ErrInvalidValue,
			"invalid 'introducer.furl = None': to disable it omit the key entirely"))
	}
	if strings.Contains(v, "#") {
		// configparser has no inline comments, so "FURL # note" keeps the
		// note in the value; Tahoe's UnescapedHashError catches that.
		return p.errAt("client", "introducer.furl", classErr(ErrInvalidValue,
			"contains a '#' character (comments must be on their own line)"))
	}
	if _, ferr := hints.ParseFURL(v); ferr != nil {
		return p.errAt("client", "introducer.furl", wrapClass(ErrInvalidValue, "", ferr))
	}
	c.IntroducerFURL = v
	c.IntroducerLine = k.line
	return nil
}
