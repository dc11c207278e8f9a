package foolscap

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzConnPB feeds arbitrary bytes, as the peer's side of a negotiated
// connection, to a Conn that serves one object and has a getReference of
// its own in flight — the whole PB layer a hostile server or client
// reaches: Banana decoding under Limits, message dispatch, answers, errors,
// inbound calls and reference tables. Whatever the bytes, the Conn must not
// panic, must end once the peer hangs up (no hang), must end with an
// error, and the pending call must return.
func FuzzConnPB(f *testing.F) {
	seeds := []string{
		// A getReferenceByName call for the served object (docs/foolscap-protocol.md §5.3).
		`0088 0b87 0181 0081 1282 "getReferenceByName" 0188 0c87 0081 0482 "name" 0182 "x" 0189 0089`,
		// An answer to our own getReference (reqID 1) with a my-reference.
		`0088 0d87 0181 0188 0f87 0181 0f82 "RIDemo.example" 0589 0089`,
		// An error answer to reqID 1.
		`0088 0e87 0181 0188 1c87 0089 0089`,
		// A call to a reference that does not exist.
		`0088 0b87 0281 0981 0482 "echo" 0189 0089`,
		// PING, PONG, a decref, a stray close.
		`01 8e 01 8f 0088 1087 0581 0181 0089`,
		// Deep nesting.
		`0088 0487 0188 0487 0288 0487 0388 0487 0389 0289 0189 0089`,
	}
	for _, s := range seeds {
		f.Add(wire(f, s))
	}
	// A negotiation error block where Banana was expected.
	f.Add([]byte("banana-decision-version: 1\r\nerror: Duplicate connection\r\n\r\n"))
	f.Add(append(make([]byte, 70), 0x82)) // a header over 64 digits
	obj := &testObj{iname: "RIDemo.example", methods: map[string]func(context.Context, []any, map[string]any) (any, error){
		"echo": func(_ context.Context, args []any, _ map[string]any) (any, error) { return Tuple(args), nil },
	}}
	f.Fuzz(func(t *testing.T, data []byte) {
		local, peer := net.Pipe()
		c := NewConn(local, ConnConfig{
			Vocab:            1,
			KeepaliveTimeout: -1,
			WriteTimeout:     time.Second,
			MaxInboundCalls:  4,
			Limits:           Limits{MaxStringLength: 1 << 12, MaxItems: 256, MaxMessageSize: 1 << 16},
			Lookup: func(name []byte) (Referenceable, bool) {
				return obj, string(name) == "x"
			},
		})
		drained := make(chan struct{})
		go func() { // whatever the Conn answers
			io.Copy(io.Discard, peer)
			close(drained)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		called := make(chan error, 1)
		go func() {
			_, err := c.GetReference(ctx, "y")
			called <- err
		}()
		peer.Write(data) // fails early if the Conn hangs up first
		peer.Close()
		select {
		case <-c.Done():
		case <-ctx.Done():
			t.Fatalf("the Conn did not end after the peer hung up (input %x)", data)
		}
		if c.Err() == nil {
			t.Fatal("the Conn ended without an error")
		}
		<-called // a peer may answer it, or not; either way it returns
		c.Close()
		<-drained
	})
}
