package foolscap

import (
	"errors"
	"io"
	"maps"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Captured blocks (docs/foolscap-protocol.md §3, §7).
const (
	capturedClientHello = "banana-negotiation-range: 3 3\r\ninitial-vocab-table-range: 0 1\r\nlast-connection: none 0\r\nmy-incarnation: 86c706b9432c6904\r\nmy-tub-id: fvzc7zou7qd2go2joqd5bl6jh4dnppxm\r\n\r\n"
	capturedServerHello = "banana-negotiation-range: 3 3\r\ninitial-vocab-table-range: 0 1\r\nmy-incarnation: f2711a4122d4fa3b\r\nmy-tub-id: nrvkbi4kvmfi3pj6j62kbfoa7qbog4hv\r\n\r\n"
	capturedDecision    = "banana-decision-version: 3\r\ncurrent-connection: f2711a4122d4fa3b 1\r\ninitial-vocab-table-index: 1 bb33\r\n\r\n"
	capturedRequest     = "GET /id/nrvkbi4kvmfi3pj6j62kbfoa7qbog4hv HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: TLS/1.0\r\nConnection: Upgrade\r\n\r\n"
	capturedResponse    = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: TLS/1.0, PB/1.0\r\nConnection: Upgrade\r\n\r\n"
	captured500         = "HTTP/1.1 500 Internal Server Error: unknown TubID aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
	capturedErrorBlock  = "banana-decision-version: 1\r\nerror: Duplicate connection\r\n\r\n"
)

func TestBlockEncodingMatchesCaptures(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"client hello", helloBlock("fvzc7zou7qd2go2joqd5bl6jh4dnppxm", "86c706b9432c6904", "none 0"), capturedClientHello},
		{"server hello", helloBlock("nrvkbi4kvmfi3pj6j62kbfoa7qbog4hv", "f2711a4122d4fa3b", ""), capturedServerHello},
		{"decision", decisionBlock(3, 1, "f2711a4122d4fa3b", 1), capturedDecision},
		{"error block", errorBlock("Duplicate connection"), capturedErrorBlock},
		{"upgrade request", upgradeRequest("nrvkbi4kvmfi3pj6j62kbfoa7qbog4hv", "127.0.0.1"), capturedRequest},
		{"500", serverErrorResponse("unknown TubID aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), captured500},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, tt.got, tt.want)
		}
	}
	if len(capturedRequest) != 109 || len(switchingResponse) != 83 || string(switchingResponse) != capturedResponse {
		t.Errorf("request/response lengths %d/%d, want 109/83 (§3.1)", len(capturedRequest), len(switchingResponse))
	}
}

func TestParseBlock(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{"client hello", strings.TrimSuffix(capturedClientHello, "\r\n\r\n"), map[string]string{
			"banana-negotiation-range": "3 3", "initial-vocab-table-range": "0 1", "last-connection": "none 0",
			"my-incarnation": "86c706b9432c6904", "my-tub-id": "fvzc7zou7qd2go2joqd5bl6jh4dnppxm"}, ""},
		{"key lowercased, value left-stripped, split at first colon", "My-Key:   a: b  ", map[string]string{"my-key": "a: b  "}, ""},
		{"later duplicate wins", "a: 1\r\nA: 2", map[string]string{"a": "2"}, ""},
		{"empty value", "error:", map[string]string{"error": ""}, ""},
		{"empty block", "", nil, "line 1: no colon"},
		{"line without colon", "a: 1\r\ngarbage", nil, "line 2: no colon"},
		{"blank line inside", "a: 1\r\n\r\nb: 2", nil, "line 2: no colon"},
		{"too long", "a: " + strings.Repeat("x", MaxBlockSize), nil, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBlock([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseBlock(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("parseBlock(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// countingReader serves data and records the largest Read and the bytes
// consumed, to check that readBlock never reads past the terminator.
type countingReader struct {
	data     []byte
	consumed int
}

func (r *countingReader) Read(p []byte) (int, error) {
	if r.consumed == len(r.data) {
		return 0, io.EOF
	}
	n := copy(p, r.data[r.consumed:])
	r.consumed += n
	return n, nil
}

func TestReadBlockStopsAtTerminator(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"101 then TLS bytes", capturedResponse + "\x16\x03\x01", strings.TrimSuffix(capturedResponse, "\r\n\r\n"), ""},
		{"hello then banana", capturedServerHello + "\x00\x88", strings.TrimSuffix(capturedServerHello, "\r\n\r\n"), ""},
		{"partial terminators", "a: \r\n\r\rb\r\n\rc: d\r\n\r\nXYZ", "a: \r\n\r\rb\r\n\rc: d", ""},
		{"empty block", "\r\n\r\nrest", "", ""},
		{"eof", "a: b\r\n", "", "unexpected EOF"},
		{"too long", strings.Repeat("x", MaxBlockSize+10), "", "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &countingReader{data: []byte(tt.in)}
			got, err := readBlock(r, MaxBlockSize)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if r.consumed > MaxBlockSize {
					t.Errorf("consumed %d bytes, more than the %d limit", r.consumed, MaxBlockSize)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("block = %q, want %q", got, tt.want)
			}
			if wantConsumed := len(tt.want) + 4; r.consumed != wantConsumed {
				t.Errorf("consumed %d bytes, want exactly %d (never past the blank line)", r.consumed, wantConsumed)
			}
		})
	}
}

func TestParseUpgradeRequest(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{"captured", strings.TrimSuffix(capturedRequest, "\r\n\r\n"), "nrvkbi4kvmfi3pj6j62kbfoa7qbog4hv", ""},
		{"empty tubid", "GET /id/ HTTP/1.1", "", ""},
		{"browser", "GET / HTTP/1.0", "", "does not start with /id/"},
		{"not GET", "POST /id/x HTTP/1.1", "", "not a GET"},
		{"two fields", "GET /id/x", "", "2 fields"},
		{"four fields", "GET /id/x HTTP/1.1 extra", "", "4 fields"},
		{"empty", "", "", "not a GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUpgradeRequest([]byte(tt.in))
			if tt.wantErr != "" {
				var be *BlockError
				if !errors.As(err, &be) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want *BlockError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseUpgradeResponse(t *testing.T) {
	tests := []struct {
		name, in   string
		wantRemote string // *RemoteNegotiationError message
		wantBlock  string // *BlockError substring
	}{
		{"captured 101", capturedResponse, "", ""},
		{"500 unknown tubid", captured500, "unknown TubID aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", ""},
		{"500 bare", "HTTP/1.1 500 Oops\r\n\r\n", "HTTP/1.1 500 Oops", ""},
		{"200", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "", "expected 101"},
		{"101 without upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", "", "without TLS upgrade"},
		{"one token", "HTTP/1.1\r\n\r\n", "", "bad status line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parseUpgradeResponse([]byte(strings.TrimSuffix(tt.in, "\r\n\r\n")))
			var re *RemoteNegotiationError
			var be *BlockError
			switch {
			case tt.wantRemote != "":
				if !errors.As(err, &re) || re.Msg != tt.wantRemote {
					t.Fatalf("err = %v, want remote %q", err, tt.wantRemote)
				}
			case tt.wantBlock != "":
				if !errors.As(err, &be) || !strings.Contains(err.Error(), tt.wantBlock) {
					t.Fatalf("err = %v, want *BlockError %q", err, tt.wantBlock)
				}
			case err != nil:
				t.Fatal(err)
			}
		})
	}
}

func TestEvaluateHello(t *testing.T) {
	const peer = "nrvkbi4kvmfi3pj6j62kbfoa7qbog4hv"
	base := func() map[string]string {
		h, err := parseBlock([]byte(strings.TrimSuffix(capturedServerHello, "\r\n\r\n")))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	tests := []struct {
		name      string
		edit      func(map[string]string)
		wantVocab int
		wantErr   string
		wantIs    error
	}{
		{"captured", func(map[string]string) {}, 1, "", nil},
		{"vocab 0 only", func(h map[string]string) { h[keyVocabRange] = "0 0" }, 0, "", nil},
		{"vocab absent", func(h map[string]string) { delete(h, keyVocabRange) }, 0, "", nil},
		{"error key", func(h map[string]string) { h["error"] = "boom" }, 0, "peer reported: boom", nil},
		{"no range", func(h map[string]string) { delete(h, keyNegotiationRange) }, 0, "No valid banana-negotiation sequence seen", nil},
		{"ancient", func(h map[string]string) { delete(h, keyNegotiationRange); h[keyOldVersion] = "1" }, 0, "foolscap-0.0.5 or earlier", nil},
		{"too new", func(h map[string]string) { h[keyNegotiationRange] = "4 5" }, 0, "You can't handle banana version 3", nil},
		{"too old", func(h map[string]string) { h[keyNegotiationRange] = "1 2" }, 0, "I can't handle banana version 2", nil},
		{"bad range", func(h map[string]string) { h[keyNegotiationRange] = "three" }, 0, "not two numbers", nil},
		{"forced", func(h map[string]string) { h[keyForced] = "True" }, 0, "negotiation-forced", nil},
		{"wrong tubid", func(h map[string]string) { h[keyTubID] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" }, 0, "wrong tubid", ErrWrongTubID},
		{"no tubid", func(h map[string]string) { delete(h, keyTubID) }, 0, "no my-tub-id", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := base()
			tt.edit(h)
			terms, err := evaluateHello(h, peer)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Fatalf("err = %v, want errors.Is %v", err, tt.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if terms.tubID != peer || terms.version != 3 || terms.vocab != tt.wantVocab {
				t.Errorf("terms = %+v, want tubid %s version 3 vocab %d", terms, peer, tt.wantVocab)
			}
		})
	}
}

func TestAcceptDecision(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    decisionTerms
		wantErr string
		wantDup bool
	}{
		{"captured", capturedDecision, decisionTerms{vocab: 1, currentConnIR: "f2711a4122d4fa3b", currentConnSeq: 1}, "", false},
		{"vocab 0", "banana-decision-version: 3\r\ninitial-vocab-table-index: 0 da39\r\n\r\n", decisionTerms{}, "", false},
		{"no vocab key", "banana-decision-version: 3\r\n\r\n", decisionTerms{}, "", false},
		{"duplicate", capturedErrorBlock, decisionTerms{}, "Duplicate connection", true},
		{"other error", "banana-decision-version: 1\r\nerror: internal server error, see logs\r\n\r\n", decisionTerms{}, "internal server error", false},
		{"no version", "initial-vocab-table-index: 1 bb33\r\n\r\n", decisionTerms{}, "No banana-decision-version value", false},
		{"bad version", "banana-decision-version: 9\r\n\r\n", decisionTerms{}, "cannot handle banana-decision-version", false},
		{"vocab hash", "banana-decision-version: 3\r\ninitial-vocab-table-index: 1 ffff\r\n\r\n", decisionTerms{}, "does not match your hash (ffff)", false},
		{"vocab index", "banana-decision-version: 3\r\ninitial-vocab-table-index: 2 abcd\r\n\r\n", decisionTerms{}, "I can't handle initial vocab table index 2", false},
		{"bad current-connection", "banana-decision-version: 3\r\ncurrent-connection: abc\r\n\r\n", decisionTerms{}, "bad current-connection", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseBlock([]byte(strings.TrimSuffix(tt.in, "\r\n\r\n")))
			if err != nil {
				t.Fatal(err)
			}
			got, err := acceptDecision(m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if errors.Is(err, ErrDuplicateConnection) != tt.wantDup {
					t.Fatalf("errors.Is(%v, ErrDuplicateConnection) = %v, want %v", err, !tt.wantDup, tt.wantDup)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestRoleString(t *testing.T) {
	for r, want := range map[Role]string{RoleMaster: "master", RoleSlave: "slave", Role(7): "Role(7)"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(r), r.String(), want)
		}
	}
}
