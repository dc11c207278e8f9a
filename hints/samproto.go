package hints

import (
	"bufio"
	"errors"
	"strconv"
	"strings"
)

// MaxSAMLine is the longest reply line, newline included, that a [SAM]
// client reads from a bridge. Real replies are at most a few KiB (a
// SESSION STATUS carrying a private key); a longer line fails with
// ErrSAMProtocol, so a hostile bridge cannot make the client buffer
// without bound.
const MaxSAMLine = 64 << 10

// A samReply is one parsed line from a SAM bridge:
// "VERB SUB KEY=VALUE KEY="QUOTED VALUE" KEY ...".
type samReply struct {
	Verb, Sub string
	Keys      []string          // keys in order of first appearance
	Args      map[string]string // a key without '=' has value ""
}

// errSAMSyntax describes a malformed reply line.
type errSAMSyntax string

func (e errSAMSyntax) Error() string { return string(e) }

// parseSAMReply parses one reply line, without its newline, as SAM v3
// writes them: space-separated words, the first two the command, the rest
// KEY=VALUE options. Control characters may appear only in quoted values. A value may be double-quoted, with \" and \\ escapes
// inside (SAM 3.2, but MESSAGE="..." also appears in older bridges). Tabs
// count as spaces; a trailing '\r' is ignored. A repeated key keeps its
// first value.
func parseSAMReply(line string) (samReply, error) {
	line = strings.TrimSuffix(line, "\r")
	var r samReply
	i := 0
	word := func() string {
		for i < len(line) && isSAMSpace(line[i]) {
			i++
		}
		j := i
		for i < len(line) && !isSAMSpace(line[i]) {
			i++
		}
		return line[j:i]
	}
	r.Verb = word()
	if r.Verb == "" {
		return r, errSAMSyntax("empty reply")
	}
	r.Sub = word()
	if r.Sub == "" || strings.ContainsAny(r.Verb+r.Sub, `="`) {
		return samReply{}, errSAMSyntax("reply does not start with two command words")
	}
	if hasCtl(r.Verb + r.Sub) {
		return samReply{}, errSAMSyntax("control character in command words")
	}
	r.Args = map[string]string{}
	for {
		for i < len(line) && isSAMSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return r, nil
		}
		j := i
		for i < len(line) && !isSAMSpace(line[i]) && line[i] != '=' && line[i] != '"' {
			i++
		}
		key := line[j:i]
		if key == "" {
			return samReply{}, errSAMSyntax("option without a key at byte " + strconv.Itoa(j))
		}
		if hasCtl(key) {
			return samReply{}, errSAMSyntax("control character in key at byte " + strconv.Itoa(j))
		}
		var val string
		switch {
		case i == len(line) || isSAMSpace(line[i]):
		case line[i] == '"':
			return samReply{}, errSAMSyntax("quote inside key at byte " + strconv.Itoa(i))
		default: // '='
			i++
			if i < len(line) && line[i] == '"' {
				var b strings.Builder
				i++
				closed := false
				for i < len(line) {
					c := line[i]
					i++
					if c == '\\' && i < len(line) && (line[i] == '"' || line[i] == '\\') {
						b.WriteByte(line[i])
						i++
						continue
					}
					if c == '"' {
						closed = true
						break
					}
					b.WriteByte(c)
				}
				if !closed {
					return samReply{}, errSAMSyntax("unterminated quoted value for " + key)
				}
				if i < len(line) && !isSAMSpace(line[i]) {
					return samReply{}, errSAMSyntax("text after quoted value for " + key)
				}
				val = b.String()
			} else {
				j := i
				for i < len(line) && !isSAMSpace(line[i]) {
					i++
				}
				val = line[j:i]
				if strings.ContainsRune(val, '"') {
					return samReply{}, errSAMSyntax("stray quote in value for " + key)
				}
				if hasCtl(val) {
					return samReply{}, errSAMSyntax("control character in value for " + key)
				}
			}
		}
		if _, dup := r.Args[key]; !dup {
			r.Keys = append(r.Keys, key)
			r.Args[key] = val
		}
	}
}

func isSAMSpace(c byte) bool { return c == ' ' || c == '\t' }

// hasCtl reports whether s holds an ASCII control character other than
// tab; only quoted values may.
func hasCtl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) >= 0
}

// String formats r so that parseSAMReply reads it back: values that are
// empty or hold spaces, quotes, backslashes or '=' are quoted. A key whose
// value is "" is written bare.
func (r samReply) String() string {
	var b strings.Builder
	b.WriteString(r.Verb)
	b.WriteByte(' ')
	b.WriteString(r.Sub)
	for _, k := range r.Keys {
		b.WriteByte(' ')
		b.WriteString(k)
		v := r.Args[k]
		if v == "" {
			continue
		}
		b.WriteByte('=')
		if strings.ContainsAny(v, " \t\"\\=") || hasCtl(v) {
			b.WriteByte('"')
			for i := 0; i < len(v); i++ {
				if v[i] == '"' || v[i] == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(v[i])
			}
			b.WriteByte('"')
		} else {
			b.WriteString(v)
		}
	}
	return b.String()
}

// errLineTooLong is returned by readSAMLine for a line over MaxSAMLine.
var errLineTooLong = errors.New("reply line longer than " + strconv.Itoa(MaxSAMLine) + " bytes")

// readSAMLine reads one '\n'-terminated line of at most max bytes from br
// and returns it without the newline. It never buffers more than max
// bytes of a line, nor reads past the newline into what follows.
func readSAMLine(br *bufio.Reader, max int) (string, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > max {
			return "", errLineTooLong
		}
		buf = append(buf, frag...)
		switch {
		case err == nil:
			return string(buf[:len(buf)-1]), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return "", err
		}
	}
}
