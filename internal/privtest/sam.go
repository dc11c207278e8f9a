package privtest

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
)

// i2pBase64 is I2P's base64 alphabet.
var i2pBase64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-~")

// A SAMStream is one STREAM CONNECT a SAM bridge accepted.
type SAMStream struct {
	SessionID string // the ID= of the command
	Dest      string // DESTINATION= as sent
}

// SAM is a fake I2P router's SAM v3 bridge on 127.0.0.1, for the STREAM
// exchanges the SAM v3 specification defines: HELLO VERSION (3.0 to 3.1),
// SESSION CREATE STYLE=STREAM DESTINATION=TRANSIENT (the session lives as
// long as its control connection), STREAM CONNECT on a new connection
// naming the session, and NAMING LOOKUP. A destination made with AddPeer
// leads to a TCP target, which the bridge dials from SAMAddr.
//
// hints/internal/samtest is the thorough fake used by package hints' own
// tests; this one is the part the end-to-end privacy tests need, usable
// outside package hints.
type SAM struct {
	// Addr is the bridge's "127.0.0.1:port".
	Addr string

	l  net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	peers    map[string]string // b32 and base64 destination -> TCP target
	sessions map[string]bool   // live session IDs
	created  []string
	streams  []SAMStream
	conns    map[net.Conn]bool
	closed   bool
}

// StartSAM starts a SAM bridge; it is closed when the test ends.
func StartSAM(t testing.TB) *SAM {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SAM{Addr: l.Addr().String(), l: l, peers: map[string]string{}, sessions: map[string]bool{}, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// AddPeer makes a new I2P destination whose streams lead to the TCP
// address target, and returns its ".b32.i2p" address.
func (s *SAM) AddPeer(target string) string {
	raw := make([]byte, 387)
	rand.Read(raw)
	sum := sha256.Sum256(raw)
	b32 := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])) + ".b32.i2p"
	s.mu.Lock()
	s.peers[b32], s.peers[i2pBase64.EncodeToString(raw)] = target, target
	s.mu.Unlock()
	return b32
}

// Sessions returns the ID of every session created so far, in order.
func (s *SAM) Sessions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.created)
}

// Streams returns every accepted stream, in order.
func (s *SAM) Streams() []SAMStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.streams)
}

// Close stops the bridge, closes every connection and waits for its
// goroutines.
func (s *SAM) Close() {
	s.l.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *SAM) serve() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			defer c.Close()
			s.handle(c)
		}()
	}
}

func (s *SAM) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = true
	return true
}

func (s *SAM) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// args parses the KEY=VALUE words after the verb and subcommand.
func args(words []string) map[string]string {
	m := map[string]string{}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		m[k] = v
	}
	return m
}

func (s *SAM) handle(c net.Conn) {
	br := bufio.NewReader(c)
	say := func(line string) bool {
		_, err := io.WriteString(c, line+"\n")
		return err == nil
	}
	helloed := false
	session := "" // the session this connection controls
	defer func() {
		if session != "" {
			s.mu.Lock()
			delete(s.sessions, session)
			s.mu.Unlock()
		}
	}()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		w := strings.Fields(line)
		if len(w) < 2 {
			say(`ERROR RESULT=I2P_ERROR MESSAGE="empty command"`)
			return
		}
		cmd, a := strings.ToUpper(w[0]+" "+w[1]), args(w[2:])
		if !helloed {
			if cmd != "HELLO VERSION" || a["MIN"] > "3.1" {
				say("HELLO REPLY RESULT=NOVERSION")
				return
			}
			helloed = say("HELLO REPLY RESULT=OK VERSION=3.1")
			continue
		}
		switch cmd {
		case "SESSION CREATE":
			id := a["ID"]
			s.mu.Lock()
			dup := s.sessions[id]
			if !dup && session == "" && a["STYLE"] == "STREAM" && a["DESTINATION"] == "TRANSIENT" {
				s.sessions[id] = true
				s.created = append(s.created, id)
				session = id
			}
			s.mu.Unlock()
			switch {
			case dup:
				say("SESSION STATUS RESULT=DUPLICATED_ID")
			case session != id:
				say(`SESSION STATUS RESULT=I2P_ERROR MESSAGE="unsupported session"`)
			default:
				priv := make([]byte, 663)
				rand.Read(priv)
				say("SESSION STATUS RESULT=OK DESTINATION=" + i2pBase64.EncodeToString(priv))
			}
		case "NAMING LOOKUP":
			say("NAMING REPLY RESULT=KEY_NOT_FOUND NAME=" + a["NAME"])
		case "STREAM CONNECT":
			s.connect(c, br, a)
			return
		default:
			say(`SESSION STATUS RESULT=I2P_ERROR MESSAGE="unsupported command"`)
		}
	}
}

// connect serves STREAM CONNECT: on success the connection becomes the
// stream until either end closes.
func (s *SAM) connect(c net.Conn, br *bufio.Reader, a map[string]string) {
	s.mu.Lock()
	live, target := s.sessions[a["ID"]], s.peers[a["DESTINATION"]]
	s.mu.Unlock()
	switch {
	case !live:
		io.WriteString(c, "STREAM STATUS RESULT=INVALID_ID\n")
		return
	case target == "":
		io.WriteString(c, "STREAM STATUS RESULT=CANT_REACH_PEER\n")
		return
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: SAMAddr.AsSlice()}}
	up, err := d.Dial("tcp", target)
	if err != nil {
		io.WriteString(c, "STREAM STATUS RESULT=CANT_REACH_PEER\n")
		return
	}
	if !s.track(up) {
		up.Close()
		return
	}
	defer s.untrack(up)
	defer up.Close()
	s.mu.Lock()
	s.streams = append(s.streams, SAMStream{SessionID: a["ID"], Dest: a["DESTINATION"]})
	s.mu.Unlock()
	if _, err := io.WriteString(c, "STREAM STATUS RESULT=OK\n"); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		io.Copy(up, br)
		up.Close()
		close(done)
	}()
	io.Copy(c, up)
	c.Close()
	<-done
}
