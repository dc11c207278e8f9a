package hints

// TransportConfig says which transports a node has, from tahoe.cfg's
// [tor] and [i2p] sections.
type TransportConfig struct {
	// Direct dials tcp hints that a [Policy] sends to HandlerTCP. Nil
	// means [DirectTCP](nil). Only this transport resolves host names
	// locally; see [DirectTCPWithResolver].
	Direct DialFunc

	// Tor configures the Tor handler; nil means "[tor] enabled = false".
	Tor *TorConfig

	// I2P configures the I2P handler; nil means "[i2p] enabled = false".
	I2P *SAMConfig
}

// Transports holds a node's transports and hands out per-identity
// [Dialers]. Build it once per node with [NewTransports]; it is safe for
// concurrent use.
type Transports struct {
	direct DialFunc
	tor    *Tor
	sam    *SAM
}

// NewTransports builds the transports of cfg. It contacts neither Tor nor
// the SAM bridge. Errors name the tahoe.cfg key at fault.
func NewTransports(cfg TransportConfig) (*Transports, error) {
	t := &Transports{direct: cfg.Direct}
	if t.direct == nil {
		t.direct = DirectTCP(nil)
	}
	if cfg.Tor != nil {
		tor, err := NewTor(*cfg.Tor)
		if err != nil {
			return nil, err
		}
		t.tor = tor
	}
	if cfg.I2P != nil {
		sam, err := NewSAM(*cfg.I2P)
		if err != nil {
			return nil, err
		}
		t.sam = sam
	}
	return t, nil
}

// Tor returns the Tor transport, or nil if Tor is disabled.
func (t *Transports) Tor() *Tor { return t.tor }

// SAM returns the I2P transport, or nil if I2P is disabled.
func (t *Transports) SAM() *SAM { return t.sam }

// ForIdentity returns the Dialers for connections made under one
// identity. isolationKey names the identity (the broker passes
// actors.Identity.Key, random per identity), so that each server's connections get their own Tor credentials and I2P
// destination, and a new identity gets new ones. The broker may call it
// per connection attempt: it is cheap, and I2P sessions are shared per
// key until [Transports.Retire].
//
// HandlerTCP is always present: whether a hint may be dialed directly is
// the [Policy]'s decision (under "reveal-IP-address = false" only a
// per-server override can choose it). HandlerTor and HandlerI2P are
// present when enabled.
func (t *Transports) ForIdentity(isolationKey string) Dialers {
	d := Dialers{HandlerTCP: t.direct}
	if t.tor != nil {
		d[HandlerTor] = t.tor.ForIdentity(isolationKey)
	}
	if t.sam != nil {
		d[HandlerI2P] = t.sam.ForIdentity(isolationKey)
	}
	return d
}

// Retire releases what isolationKey holds: its I2P session, whose
// streams end. Call it when an identity is replaced or its server
// removed. Tor credentials need no release.
func (t *Transports) Retire(isolationKey string) error {
	if t.sam == nil {
		return nil
	}
	return t.sam.Retire(isolationKey)
}

// Close closes every I2P session; later I2P dials fail with ErrSAMClosed.
func (t *Transports) Close() error {
	if t.sam == nil {
		return nil
	}
	return t.sam.Close()
}
