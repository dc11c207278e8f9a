// Package samtest is a fake I2P SAM v3 bridge for tests: it speaks the
// HELLO, SESSION CREATE (STYLE=STREAM), STREAM CONNECT and NAMING LOOKUP
// exchanges of the SAM v3 specification on 127.0.0.1, records what
// clients ask, and connects accepted streams to local TCP targets so that
// bytes flow end to end.
//
// Its I2P is a table: destinations made with [Server.AddPeer] lead to a
// TCP address, names added with [Server.AddName] resolve to destinations.
// It follows the specification where real bridges agree: the session
// lives as long as its control connection and takes its streams with it;
// STREAM CONNECT accepts a base64 destination or a .b32.i2p address
// derived from it (base32 of its SHA-256). Unlike Java I2P and recent
// i2pd, it does not resolve other host names in STREAM CONNECT (it
// answers INVALID_KEY), so tests prove the client looks names up itself
// with NAMING LOOKUP.
package samtest

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// I2PBase64 is I2P's base64 alphabet: standard base64 with '-' and '~'
// for '+' and '/'.
var I2PBase64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-~")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// A Destination is an I2P destination in its two written forms.
type Destination struct {
	Base64 string // the full destination, 516 characters for 387 bytes
	B32    string // base32(SHA-256(destination bytes)), lower case, + ".b32.i2p"
}

// NewDestination returns a random 387-byte destination.
func NewDestination() Destination {
	raw := make([]byte, 387)
	rand.Read(raw)
	return destFromBytes(raw)
}

func destFromBytes(raw []byte) Destination {
	sum := sha256.Sum256(raw)
	return Destination{Base64: I2PBase64.EncodeToString(raw), B32: strings.ToLower(b32.EncodeToString(sum[:])) + ".b32.i2p"}
}

// Config configures a Server.
type Config struct {
	// Versions are the SAM versions the bridge speaks. Nil means 3.0 and
	// 3.1.
	Versions []string
	// DialFrom, if valid, is the local address the bridge reaches its
	// peers' TCP targets from, so that a test can tell a connection that
	// came through the bridge from a direct one.
	DialFrom netip.Addr
}

// A SessionRecord is a session a client created.
type SessionRecord struct {
	ID      string
	Version string            // negotiated on the control connection
	Options map[string]string // every option of SESSION CREATE, STYLE and ID included
	Dest    Destination       // the transient destination made for it
	Ended   <-chan struct{}   // closed when the session ends
}

// A StreamRecord is an accepted STREAM CONNECT.
type StreamRecord struct {
	SessionID string
	Dest      string // DESTINATION as sent
	Options   map[string]string
}

type peer struct {
	target          string // TCP address, or ""
	result, message string // forced RESULT, or ""
}

type session struct {
	rec     SessionRecord
	ended   chan struct{}
	ctrl    net.Conn
	streams map[net.Conn]bool
}

// Server is a fake SAM bridge listening on 127.0.0.1.
type Server struct {
	// Addr is the bridge's "127.0.0.1:port".
	Addr string

	l        net.Listener
	versions []string
	dialFrom netip.Addr
	wg       sync.WaitGroup

	mu         sync.Mutex
	peers      map[string]*peer // by base64 and by b32
	names      map[string]string
	sessions   map[string]*session
	records    []SessionRecord
	streams    []StreamRecord
	commands   []string
	conns      map[net.Conn]bool
	sessResult [2]string
	closed     bool
}

// Start starts a Server; it is closed when the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		Addr: l.Addr().String(), l: l, versions: cfg.Versions, dialFrom: cfg.DialFrom,
		peers: map[string]*peer{}, names: map[string]string{}, sessions: map[string]*session{},
		conns: map[net.Conn]bool{},
	}
	if s.versions == nil {
		s.versions = []string{"3.0", "3.1"}
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Close stops the server and closes every connection.
func (s *Server) Close() {
	s.l.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// AddPeer returns a new destination whose streams connect to the TCP
// address target.
func (s *Server) AddPeer(target string) Destination {
	return s.addPeer(&peer{target: target})
}

// AddFailingPeer returns a new destination to which STREAM CONNECT fails
// with result (such as "TIMEOUT") and, if not empty, message.
func (s *Server) AddFailingPeer(result, message string) Destination {
	return s.addPeer(&peer{result: result, message: message})
}

func (s *Server) addPeer(p *peer) Destination {
	d := NewDestination()
	s.mu.Lock()
	s.peers[d.Base64], s.peers[d.B32] = p, p
	s.mu.Unlock()
	return d
}

// AddName makes NAMING LOOKUP NAME=name answer d.
func (s *Server) AddName(name string, d Destination) {
	s.mu.Lock()
	s.names[name] = d.Base64
	s.mu.Unlock()
}

// FailSessions makes every later SESSION CREATE fail with result and
// message; an empty result restores normal service.
func (s *Server) FailSessions(result, message string) {
	s.mu.Lock()
	s.sessResult = [2]string{result, message}
	s.mu.Unlock()
}

// ForgetSession drops session id from the bridge's table without closing
// its control connection, so that STREAM CONNECT with it gets INVALID_ID.
func (s *Server) ForgetSession(id string) {
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
}

// EndSession closes the control connection of session id, as a bridge
// does when the router drops the session; its streams end too.
func (s *Server) EndSession(id string) {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess != nil {
		sess.ctrl.Close()
	}
}

// Sessions returns every session created so far, in order.
func (s *Server) Sessions() []SessionRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SessionRecord(nil), s.records...)
}

// Live returns the IDs of the sessions alive now.
func (s *Server) Live() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.sessions {
		ids = append(ids, id)
	}
	return ids
}

// Streams returns every accepted stream so far, in order.
func (s *Server) Streams() []StreamRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StreamRecord(nil), s.streams...)
}

// Commands returns every command line received so far, in order.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

func (s *Server) forget(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// command is a parsed command line.
type command struct {
	verb, sub string
	opts      map[string]string
}

// parseCommand splits "VERB SUB K=V K="V V" ..." (quotes with \" and \\).
func parseCommand(line string) command {
	var words []string
	var b strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case inQuote && ch == '\\' && i+1 < len(line):
			i++
			b.WriteByte(line[i])
		case ch == '"':
			inQuote, have = !inQuote, true
		case !inQuote && (ch == ' ' || ch == '\t'):
			if have {
				words = append(words, b.String())
				b.Reset()
				have = false
			}
		default:
			b.WriteByte(ch)
			have = true
		}
	}
	if have {
		words = append(words, b.String())
	}
	cmd := command{opts: map[string]string{}}
	for i, w := range words {
		switch i {
		case 0:
			cmd.verb = strings.ToUpper(w)
		case 1:
			cmd.sub = strings.ToUpper(w)
		default:
			k, v, _ := strings.Cut(w, "=")
			if _, dup := cmd.opts[k]; !dup {
				cmd.opts[k] = v
			}
		}
	}
	return cmd
}

func (s *Server) handle(c net.Conn) {
	stream := false
	defer func() {
		if !stream {
			c.Close()
			s.forget(c)
		}
	}()
	br := bufio.NewReader(c)
	reply := func(line string) bool {
		_, err := io.WriteString(c, line+"\n")
		return err == nil
	}
	version := ""
	var own *session // the session this connection controls
	defer func() {
		if own != nil {
			s.endSession(own)
		}
	}()
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		s.mu.Lock()
		s.commands = append(s.commands, line)
		s.mu.Unlock()
		cmd := parseCommand(line)
		if version == "" {
			if cmd.verb != "HELLO" || cmd.sub != "VERSION" {
				reply(`HELLO REPLY RESULT=I2P_ERROR MESSAGE="Must start with HELLO VERSION"`)
				return
			}
			v, ok := s.negotiate(cmd.opts["MIN"], cmd.opts["MAX"])
			if !ok {
				reply("HELLO REPLY RESULT=NOVERSION")
				return
			}
			version = v
			if !reply("HELLO REPLY RESULT=OK VERSION=" + v) {
				return
			}
			continue
		}
		switch cmd.verb + " " + cmd.sub {
		case "SESSION CREATE":
			if own != nil {
				reply(`SESSION STATUS RESULT=I2P_ERROR MESSAGE="Session already created on this socket"`)
				continue
			}
			var msg string
			own, msg = s.createSession(c, version, cmd)
			if !reply(msg) {
				return
			}
		case "STREAM CONNECT":
			if own != nil {
				reply(`STREAM STATUS RESULT=I2P_ERROR MESSAGE="STREAM CONNECT on a session control socket"`)
				continue
			}
			stream = s.connect(c, br, cmd)
			return
		case "NAMING LOOKUP":
			name := cmd.opts["NAME"]
			if name == "ME" && own != nil {
				reply("NAMING REPLY RESULT=OK NAME=ME VALUE=" + own.rec.Dest.Base64)
				continue
			}
			s.mu.Lock()
			v, ok := s.names[name]
			if !ok && strings.HasSuffix(name, ".b32.i2p") {
				for k, p := range s.peers {
					if p == s.peers[name] && !strings.HasSuffix(k, ".b32.i2p") {
						v, ok = k, true
					}
				}
			}
			s.mu.Unlock()
			if !ok {
				reply(`NAMING REPLY RESULT=KEY_NOT_FOUND NAME=` + name)
				continue
			}
			reply("NAMING REPLY RESULT=OK NAME=" + name + " VALUE=" + v)
		default:
			if cmd.verb == "PING" {
				reply("PONG" + line[len("PING"):])
				continue
			}
			reply(cmd.verb + ` STATUS RESULT=I2P_ERROR MESSAGE="unsupported command"`)
		}
	}
}

// negotiate picks the highest version in [min, max] the server speaks.
func (s *Server) negotiate(min, max string) (string, bool) {
	lo, hi := verNum(min), verNum(max)
	if min == "" {
		lo = 0
	}
	if max == "" {
		hi = 1 << 30
	}
	best, bestN := "", -1
	for _, v := range s.versions {
		if n := verNum(v); n >= lo && n <= hi && n > bestN {
			best, bestN = v, n
		}
	}
	return best, bestN >= 0
}

// verNum turns "3.1" into 3001 (and a bare "3" into 3000).
func verNum(v string) int {
	maj, min, _ := strings.Cut(v, ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil {
		return -1
	}
	if min == "" {
		b, err2 = 0, nil
	}
	if err2 != nil {
		return -1
	}
	return a*1000 + b
}

func (s *Server) createSession(c net.Conn, version string, cmd command) (*session, string) {
	id, style, dest := cmd.opts["ID"], cmd.opts["STYLE"], cmd.opts["DESTINATION"]
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.sessResult[0] != "":
		msg := "SESSION STATUS RESULT=" + s.sessResult[0]
		if s.sessResult[1] != "" {
			msg += ` MESSAGE="` + s.sessResult[1] + `"`
		}
		return nil, msg
	case id == "" || strings.ContainsAny(id, " \t"):
		return nil, `SESSION STATUS RESULT=I2P_ERROR MESSAGE="missing ID"`
	case style != "STREAM":
		return nil, `SESSION STATUS RESULT=I2P_ERROR MESSAGE="this bridge supports only STYLE=STREAM"`
	case dest != "TRANSIENT":
		return nil, "SESSION STATUS RESULT=INVALID_KEY"
	case s.sessions[id] != nil:
		return nil, "SESSION STATUS RESULT=DUPLICATED_ID"
	}
	priv := make([]byte, 663)
	rand.Read(priv)
	ended := make(chan struct{})
	sess := &session{
		rec:     SessionRecord{ID: id, Version: version, Options: cmd.opts, Dest: destFromBytes(priv[:387]), Ended: ended},
		ended:   ended,
		ctrl:    c,
		streams: map[net.Conn]bool{},
	}
	s.sessions[id] = sess
	s.records = append(s.records, sess.rec)
	return sess, "SESSION STATUS RESULT=OK DESTINATION=" + I2PBase64.EncodeToString(priv)
}

// endSession ends sess and its streams, as a bridge does when the control
// socket closes.
func (s *Server) endSession(sess *session) {
	s.mu.Lock()
	if s.sessions[sess.rec.ID] == sess {
		delete(s.sessions, sess.rec.ID)
	}
	streams := sess.streams
	sess.streams = map[net.Conn]bool{}
	s.mu.Unlock()
	for c := range streams {
		c.Close()
	}
	close(sess.ended)
}

// connect handles STREAM CONNECT; it reports whether c became a stream
// (and is then closed by the pipe).
func (s *Server) connect(c net.Conn, br *bufio.Reader, cmd command) bool {
	silent := strings.EqualFold(cmd.opts["SILENT"], "true")
	fail := func(result, message string) bool {
		if !silent {
			msg := "STREAM STATUS RESULT=" + result
			if message != "" {
				msg += ` MESSAGE="` + message + `"`
			}
			io.WriteString(c, msg+"\n")
		}
		return false
	}
	dest := cmd.opts["DESTINATION"]
	s.mu.Lock()
	sess := s.sessions[cmd.opts["ID"]]
	p := s.peers[strings.ToLower(dest)]
	if !strings.HasSuffix(strings.ToLower(dest), ".b32.i2p") {
		p = s.peers[dest]
	}
	s.mu.Unlock()
	if sess == nil {
		return fail("INVALID_ID", "no session "+cmd.opts["ID"])
	}
	if p == nil {
		if !strings.HasSuffix(strings.ToLower(dest), ".b32.i2p") {
			if raw, err := I2PBase64.DecodeString(dest); err != nil || len(raw) < 387 {
				return fail("INVALID_KEY", "bad destination")
			}
		}
		return fail("CANT_REACH_PEER", "no such peer")
	}
	if p.result != "" {
		return fail(p.result, p.message)
	}
	var d net.Dialer
	if s.dialFrom.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: s.dialFrom.AsSlice()}
	}
	t, err := d.Dial("tcp", p.target)
	if err != nil {
		return fail("CANT_REACH_PEER", err.Error())
	}
	s.mu.Lock()
	if s.sessions[sess.rec.ID] != sess || s.closed {
		s.mu.Unlock()
		t.Close()
		return fail("INVALID_ID", "session ended")
	}
	sess.streams[c] = true
	s.conns[t] = true
	s.streams = append(s.streams, StreamRecord{SessionID: sess.rec.ID, Dest: dest, Options: cmd.opts})
	s.mu.Unlock()
	if !silent {
		io.WriteString(c, "STREAM STATUS RESULT=OK\n")
	}
	s.pipe(c, br, t, sess)
	return true
}

// pipe copies between the client stream c and the target t until either
// ends, then closes both.
func (s *Server) pipe(c net.Conn, br *bufio.Reader, t net.Conn, sess *session) {
	done := make(chan struct{}, 2)
	go func() { io.Copy(t, br); done <- struct{}{} }()
	go func() { io.Copy(c, t); done <- struct{}{} }()
	<-done
	c.Close()
	t.Close()
	<-done
	s.mu.Lock()
	delete(sess.streams, c)
	delete(s.conns, c)
	delete(s.conns, t)
	s.mu.Unlock()
}
