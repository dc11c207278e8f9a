package tubtls

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// pairResult is what each end of a test connection saw.
type pairResult struct {
	client, server       tls.ConnectionState
	clientErr, serverErr error
}

// ok fails t unless both ends completed the handshake and the exchange.
func (r pairResult) ok(t *testing.T) {
	t.Helper()
	if r.clientErr != nil || r.serverErr != nil {
		t.Fatalf("connection failed: client: %v; server: %v", r.clientErr, r.serverErr)
	}
}

// listen returns a TCP listener on 127.0.0.1, closed when the test ends.
func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// connect makes one TLS connection over ln: the server handshakes with
// serverCfg, the client dials with clientCfg. After the handshake the client
// sends a byte and the server answers with one, so that a certificate the
// server rejects after a TLS 1.3 handshake (the alert arrives on the first
// Read) still shows as an error, and TLS 1.3 session tickets reach the
// client. Both ends are closed before connect returns.
func connect(t testing.TB, ln net.Listener, clientCfg, serverCfg *tls.Config) pairResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()

	var r pairResult
	serverDone := make(chan struct{})
	go func() {
		defer close(serverDone)
		raw, err := ln.Accept()
		if err != nil {
			r.serverErr = err
			return
		}
		defer raw.Close()
		raw.SetDeadline(deadline)
		conn := tls.Server(raw, serverCfg)
		if err := conn.HandshakeContext(ctx); err != nil {
			r.serverErr = err
			return
		}
		r.server = conn.ConnectionState()
		var b [1]byte
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			r.serverErr = err
			return
		}
		if _, err := conn.Write([]byte{'y'}); err != nil {
			r.serverErr = err
		}
	}()

	r.clientErr = func() error {
		var d net.Dialer
		raw, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer raw.Close()
		raw.SetDeadline(deadline)
		conn := tls.Client(raw, clientCfg)
		if err := conn.HandshakeContext(ctx); err != nil {
			return err
		}
		r.client = conn.ConnectionState()
		if _, err := conn.Write([]byte{'x'}); err != nil {
			return err
		}
		var b [1]byte
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			return err
		}
		return nil
	}()
	<-serverDone
	return r
}

var tlsVersions = []struct {
	name    string
	version uint16
}{
	{"TLS1.2", tls.VersionTLS12},
	{"TLS1.3", tls.VersionTLS13},
}

// withMaxVersion returns cfg limited to version v.
func withMaxVersion(cfg *tls.Config, v uint16) *tls.Config {
	cfg.MaxVersion = v
	return cfg
}

func TestClientConfigPinsTubID(t *testing.T) {
	server := newEphemeral(t)
	client := newEphemeral(t)
	stranger := newEphemeral(t)
	for _, v := range tlsVersions {
		t.Run(v.name, func(t *testing.T) {
			ln := listen(t)
			t.Run("right tubid", func(t *testing.T) {
				r := connect(t, ln, withMaxVersion(client.ClientConfig(server.TubID), v.version), server.ServerConfig())
				r.ok(t)
				if r.client.Version != v.version || r.server.Version != v.version {
					t.Errorf("negotiated %x/%x, want %x", r.client.Version, r.server.Version, v.version)
				}
				if got, err := PeerTubID(r.client); err != nil || got != server.TubID {
					t.Errorf("client sees server TubID %q (%v), want %s", got, err, server.TubID)
				}
				if got, err := PeerTubID(r.server); err != nil || got != client.TubID {
					t.Errorf("server sees client TubID %q (%v), want %s", got, err, client.TubID)
				}
				if r.client.ServerName != "" || r.server.ServerName != "" {
					t.Errorf("SNI sent: %q", r.server.ServerName)
				}
			})
			t.Run("wrong tubid", func(t *testing.T) {
				r := connect(t, ln, withMaxVersion(client.ClientConfig(stranger.TubID), v.version), server.ServerConfig())
				var me *MismatchError
				if !errors.As(r.clientErr, &me) {
					t.Fatalf("client error = %v (%T), want *MismatchError", r.clientErr, r.clientErr)
				}
				if me.Want != stranger.TubID || me.Got != server.TubID {
					t.Errorf("MismatchError{Want: %s, Got: %s}, want {%s, %s}", me.Want, me.Got, stranger.TubID, server.TubID)
				}
				if want := "tubtls: wrong tubid: expected " + stranger.TubID + ", peer certificate is " + server.TubID; me.Error() != want {
					t.Errorf("message %q, want %q", me.Error(), want)
				}
				if !strings.Contains(r.clientErr.Error(), "wrong tubid") {
					t.Errorf("handshake error %q does not say wrong tubid", r.clientErr)
				}
				if r.serverErr == nil {
					t.Error("server completed a connection the client rejected")
				}
			})
		})
	}
}

// TestClientConfigAcceptsOddServerCerts checks that expiry, RSA keys and
// X.509 v1 (as Foolscap makes) do not matter: only the TubID does.
func TestClientConfigAcceptsOddServerCerts(t *testing.T) {
	client := newEphemeral(t)
	for _, file := range []string{"expired-rsa.pem", "foolscap-node.pem"} {
		server, err := ParsePEM(readTestdata(t, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range tlsVersions {
			t.Run(file+"/"+v.name, func(t *testing.T) {
				ln := listen(t)
				r := connect(t, ln, withMaxVersion(client.ClientConfig(server.TubID), v.version), server.ServerConfig())
				r.ok(t)
				if got, _ := PeerTubID(r.client); got != server.TubID {
					t.Errorf("client sees %s, want %s", got, server.TubID)
				}
				r = connect(t, ln, withMaxVersion(client.ClientConfig(client.TubID), v.version), server.ServerConfig())
				if !errors.As(r.clientErr, new(*MismatchError)) {
					t.Errorf("wrong pin: client error %v, want *MismatchError", r.clientErr)
				}
			})
		}
	}
	// The expired certificate really is expired, so the test above means
	// something.
	expired, err := ParsePEM(readTestdata(t, "expired-rsa.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !expired.Certificate.Leaf.NotAfter.Before(time.Now()) {
		t.Fatalf("testdata/expired-rsa.pem is not expired (NotAfter %v)", expired.Certificate.Leaf.NotAfter)
	}
}

func TestServerConfigRequiresClientCert(t *testing.T) {
	server := newEphemeral(t)
	for _, v := range tlsVersions {
		t.Run(v.name, func(t *testing.T) {
			ln := listen(t)
			anonymous := newEphemeral(t).ClientConfig(server.TubID)
			anonymous.Certificates = nil
			r := connect(t, ln, withMaxVersion(anonymous, v.version), server.ServerConfig())
			if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "client didn't provide a certificate") {
				t.Errorf("server error = %v, want client didn't provide a certificate", r.serverErr)
			}
			if r.clientErr == nil {
				t.Error("client without a certificate completed the exchange")
			}
		})
	}
}

func TestServerConfigAcceptsAnyClientCert(t *testing.T) {
	server := newEphemeral(t)
	for _, file := range []string{"expired-rsa.pem", "foolscap-node.pem"} {
		client, err := ParsePEM(readTestdata(t, file))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(file, func(t *testing.T) {
			r := connect(t, listen(t), client.ClientConfig(server.TubID), server.ServerConfig())
			r.ok(t)
			if got, err := PeerTubID(r.server); err != nil || got != client.TubID {
				t.Errorf("PeerTubID on the server = %q (%v), want %s", got, err, client.TubID)
			}
		})
	}
}

func TestDefaultVersionIsTLS13(t *testing.T) {
	server, client := newEphemeral(t), newEphemeral(t)
	r := connect(t, listen(t), client.ClientConfig(server.TubID), server.ServerConfig())
	r.ok(t)
	if r.client.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(r.client.Version))
	}
}

// TestMinVersionTLS12 checks that each side refuses a peer limited to
// TLS 1.1.
func TestMinVersionTLS12(t *testing.T) {
	server, client := newEphemeral(t), newEphemeral(t)
	tls11 := func(cfg *tls.Config) *tls.Config {
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		return cfg
	}
	tests := []struct {
		name           string
		client, server *tls.Config
	}{
		{"old client", tls11(client.ClientConfig(server.TubID)), server.ServerConfig()},
		{"old server", client.ClientConfig(server.TubID), tls11(server.ServerConfig())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := connect(t, listen(t), tt.client, tt.server)
			if r.clientErr == nil || r.serverErr == nil {
				t.Fatalf("TLS 1.1 peer connected: client %v, server %v", r.clientErr, r.serverErr)
			}
			if !strings.Contains(r.clientErr.Error()+r.serverErr.Error(), "version") {
				t.Errorf("errors do not mention the version: client %v, server %v", r.clientErr, r.serverErr)
			}
		})
	}
}

// TestNoSessionResumption makes two connections with the same Configs and
// checks that the second one is a full handshake. The control case enables
// tickets and a session cache on copies of the same Configs and sees the
// resumption, which shows the check can fail.
func TestNoSessionResumption(t *testing.T) {
	server, client := newEphemeral(t), newEphemeral(t)
	for _, v := range tlsVersions {
		t.Run(v.name, func(t *testing.T) {
			ln := listen(t)
			ccfg := withMaxVersion(client.ClientConfig(server.TubID), v.version)
			scfg := server.ServerConfig()
			for i := range 2 {
				r := connect(t, ln, ccfg, scfg)
				r.ok(t)
				if r.client.DidResume || r.server.DidResume {
					t.Errorf("connection %d resumed a session", i+1)
				}
			}

			ccfg = withMaxVersion(client.ClientConfig(server.TubID), v.version)
			ccfg.SessionTicketsDisabled = false
			ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			scfg = server.ServerConfig()
			scfg.SessionTicketsDisabled = false
			connect(t, ln, ccfg, scfg).ok(t)
			r := connect(t, ln, ccfg, scfg)
			r.ok(t)
			if !r.client.DidResume {
				t.Error("control: a session cache and tickets did not resume, so the check above proves nothing")
			}
			// The pin still holds on a resumed session.
			if got, _ := PeerTubID(r.client); got != server.TubID {
				t.Errorf("resumed session: client sees %s, want %s", got, server.TubID)
			}
		})
	}
}

func TestConfigsAreFresh(t *testing.T) {
	id := newEphemeral(t)
	a, b := id.ClientConfig("x"), id.ClientConfig("x")
	if a == b {
		t.Fatal("ClientConfig returned the same *tls.Config twice")
	}
	a.MaxVersion = tls.VersionTLS12
	if b.MaxVersion != 0 {
		t.Error("changing one ClientConfig changed another")
	}
	for name, cfg := range map[string]*tls.Config{"client": a, "server": id.ServerConfig()} {
		if !cfg.SessionTicketsDisabled || cfg.ClientSessionCache != nil {
			t.Errorf("%s config allows session resumption", name)
		}
		if cfg.MinVersion != tls.VersionTLS12 {
			t.Errorf("%s MinVersion = %x, want TLS 1.2", name, cfg.MinVersion)
		}
		if len(cfg.Certificates) != 1 || cfg.Certificates[0].Leaf != id.Certificate.Leaf {
			t.Errorf("%s config does not present the identity", name)
		}
	}
	if id.ServerConfig().ClientAuth != tls.RequireAnyClientCert {
		t.Error("server config does not require a client certificate")
	}
}

func TestPeerTubIDNoCertificate(t *testing.T) {
	got, err := PeerTubID(tls.ConnectionState{})
	if got != "" || !errors.Is(err, ErrNoPeerCertificate) {
		t.Errorf("PeerTubID(no certs) = %q, %v; want ErrNoPeerCertificate", got, err)
	}
	cfg := newEphemeral(t).ClientConfig("whatever")
	if err := cfg.VerifyConnection(tls.ConnectionState{}); !errors.Is(err, ErrNoPeerCertificate) {
		t.Errorf("VerifyConnection(no certs) = %v, want ErrNoPeerCertificate", err)
	}
}
