package liveview

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Serve serves h (a status.Handler: the page, its JSON and /metrics) on
// addr, e.g. "127.0.0.1:8080", in a goroutine of its own. It returns the
// page's URL and a function that shuts the server down, waiting up to 5 s
// for requests in flight, and returns when the server has stopped.
func Serve(addr string, h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("status page: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String() + "/", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	}, nil
}
