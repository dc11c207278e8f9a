package memstore

import (
	"context"
	"net"

	"github.com/tubfarm/tubfarm/foolscap"
	"github.com/tubfarm/tubfarm/hints"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// Server is a store served on one loopback port over both protocols, with
// its FURL and NURL.
type Server struct {
	Store *Store
	Tub   *foolscap.Tub
	Mux   *Mux
	FURL  string
	NURL  hints.NURL
	Swiss string
}

// Start serves a new store on 127.0.0.1 under a fresh identity. Foolscap
// connections use fcfg.
func Start(ctx context.Context, cfg Config, fcfg foolscap.ListenConfig) (*Server, error) {
	id, err := tubtls.NewEphemeral()
	if err != nil {
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	st := New(cfg)
	s := &Server{Store: st, Tub: foolscap.NewTub(id), Swiss: foolscap.NewSwissnum()}
	s.Mux = Serve(ln, ServeConfig{Foolscap: fcfg, Cert: id.Certificate, Handler: st.HTTP(s.Swiss)})
	hint := "tcp:" + ln.Addr().String()
	s.Tub.SetLocation(hint)
	if s.FURL, err = s.Tub.Register(st.Foolscap(nil), s.Swiss); err != nil {
		s.Mux.Close()
		return nil, err
	}
	s.Mux.Foolscap.AddTub(s.Tub)
	if s.NURL, err = hints.FormatNURL(id.Certificate.Leaf, hint, s.Swiss); err != nil {
		s.Mux.Close()
		return nil, err
	}
	return s, nil
}

// Close stops serving.
func (s *Server) Close() error { return s.Mux.Close() }
