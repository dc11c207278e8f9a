package tubtls

import (
	"crypto/tls"
	"errors"
	"fmt"
)

// MismatchError reports a peer whose certificate does not hash to the TubID
// that was expected (from a FURL, or from the peer's own hello).
type MismatchError struct {
	Want string // the TubID we expected
	Got  string // the TubID of the certificate the peer presented
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("tubtls: wrong tubid: expected %s, peer certificate is %s", e.Want, e.Got)
}

// ErrNoPeerCertificate means the peer presented no certificate. Foolscap
// requires one on both sides.
var ErrNoPeerCertificate = errors.New("tubtls: peer presented no certificate")

// PeerTubID returns the TubID of the peer's leaf certificate.
func PeerTubID(cs tls.ConnectionState) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", ErrNoPeerCertificate
	}
	return TubID(cs.PeerCertificates[0].Raw), nil
}

// ClientConfig returns a TLS client configuration that presents this identity
// and accepts the server only if its certificate hashes to wantTubID.
//
// Chain, host name and expiry checks are off: Foolscap certificates are
// self-signed and often expired, and the TubID pin replaces them all. The
// check runs in VerifyConnection, which (unlike VerifyPeerCertificate) also
// runs on resumed sessions; there are none here anyway, because session
// tickets are disabled and no session cache is set. Each call returns a new
// Config that the caller may adjust (for instance MaxVersion) before use.
func (id *Identity) ClientConfig(wantTubID string) *tls.Config {
	return &tls.Config{
		Certificates:           []tls.Certificate{id.Certificate},
		MinVersion:             tls.VersionTLS12,
		InsecureSkipVerify:     true, // the TubID pin in VerifyConnection replaces chain checks
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			got, err := PeerTubID(cs)
			if err != nil {
				return err
			}
			if got != wantTubID {
				return &MismatchError{Want: wantTubID, Got: got}
			}
			return nil
		},
	}
}

// ServerConfig returns a TLS server configuration that presents this identity
// and requires the client to present a certificate (any certificate: the
// client's TubID is taken from it with PeerTubID and checked against its
// hello by the Foolscap layer).
func (id *Identity) ServerConfig() *tls.Config {
	return &tls.Config{
		Certificates:           []tls.Certificate{id.Certificate},
		MinVersion:             tls.VersionTLS12,
		ClientAuth:             tls.RequireAnyClientCert,
		SessionTicketsDisabled: true,
	}
}
