package hints

import (
	"bufio"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var samReplyTests = []struct {
	in   string
	want samReply
	err  string
}{
	{in: "HELLO REPLY RESULT=OK VERSION=3.1", want: samReply{Verb: "HELLO", Sub: "REPLY", Keys: []string{"RESULT", "VERSION"}, Args: map[string]string{"RESULT": "OK", "VERSION": "3.1"}}},
	{in: "STREAM STATUS RESULT=CANT_REACH_PEER MESSAGE=\"Connection timed out\"\r", want: samReply{Verb: "STREAM", Sub: "STATUS", Keys: []string{"RESULT", "MESSAGE"}, Args: map[string]string{"RESULT": "CANT_REACH_PEER", "MESSAGE": "Connection timed out"}}},
	{in: `SESSION STATUS RESULT=I2P_ERROR MESSAGE="say \"hi\" \\ bye"`, want: samReply{Verb: "SESSION", Sub: "STATUS", Keys: []string{"RESULT", "MESSAGE"}, Args: map[string]string{"RESULT": "I2P_ERROR", "MESSAGE": `say "hi" \ bye`}}},
	{in: "NAMING  REPLY\tRESULT=OK  NAME=a.i2p VALUE=AAAA== FLAG", want: samReply{Verb: "NAMING", Sub: "REPLY", Keys: []string{"RESULT", "NAME", "VALUE", "FLAG"}, Args: map[string]string{"RESULT": "OK", "NAME": "a.i2p", "VALUE": "AAAA==", "FLAG": ""}}},
	{in: "X Y A=1 A=2 B=", want: samReply{Verb: "X", Sub: "Y", Keys: []string{"A", "B"}, Args: map[string]string{"A": "1", "B": ""}}},
	{in: "", err: "empty reply"},
	{in: "   ", err: "empty reply"},
	{in: "HELLO", err: "reply does not start with two command words"},
	{in: "HELLO RESULT=OK", err: "reply does not start with two command words"},
	{in: "A B =x", err: "option without a key at byte 4"},
	{in: `A B K="x`, err: "unterminated quoted value for K"},
	{in: `A B K="x"y`, err: "text after quoted value for K"},
	{in: `A B K=x"y`, err: "stray quote in value for K"},
	{in: `A B K"=x`, err: "quote inside key at byte 5"},
	{in: "0 \r ", err: "control character in command words"}, // found by FuzzParseSAMReply
	{in: "A B K\x00=1", err: "control character in key at byte 4"},
	{in: "A B K=\x7f", err: "control character in value for K"},
}

func TestParseSAMReply(t *testing.T) {
	for _, tt := range samReplyTests {
		got, err := parseSAMReply(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("parseSAMReply(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseSAMReply(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestReadSAMLine(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("short\n"+strings.Repeat("x", 99)+"\n"+strings.Repeat("y", 100)+"\nrest"), 16)
	for _, want := range []string{"short", strings.Repeat("x", 99)} {
		if got, err := readSAMLine(br, 100); err != nil || got != want {
			t.Fatalf("readSAMLine = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := readSAMLine(br, 100); !errors.Is(err, errLineTooLong) {
		t.Fatalf("101-byte line: %v", err)
	}
}

// FuzzParseSAMReply checks that no reply line crashes the parser, that
// parsing is deterministic, and that a parsed reply survives String and a
// second parse unchanged.
func FuzzParseSAMReply(f *testing.F) {
	for _, tt := range samReplyTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsRune(line, '\n') {
			return // readSAMLine never returns a newline
		}
		r, err := parseSAMReply(line)
		if err != nil {
			return
		}
		if r.Verb == "" || r.Sub == "" || len(r.Keys) != len(r.Args) {
			t.Fatalf("parseSAMReply(%q) = %+v", line, r)
		}
		s := r.String()
		r2, err := parseSAMReply(s)
		if err != nil || !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip of %q via %q: %+v, %v; want %+v", line, s, r2, err, r)
		}
	})
}
