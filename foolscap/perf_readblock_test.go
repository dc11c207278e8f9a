package foolscap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// chunkReader returns data in reads of the given sizes, cycling through
// them, as a stream socket may.
type chunkReader struct {
	data   []byte
	chunks []byte
	i      int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(r.chunks) > 0 {
		n = min(n, int(r.chunks[r.i%len(r.chunks)])%64+1)
		r.i++
	}
	n = copy(p, r.data[:min(n, len(r.data))])
	r.data = r.data[n:]
	return n, nil
}

// checkPlainMatchesReadBlock reads data (delivered in the given chunk
// sizes) with readBlockPlain and checks the result against the definition:
// the block is everything before the first CRLFCRLF if that terminator
// ends within limit bytes; otherwise the error is ErrBlockTooLong, or
// io.ErrUnexpectedEOF if the data ends first; and whatever reads next
// (rest, then the stream) gets exactly the bytes after the terminator.
// Away from the limit, where the byte-wise readBlock may read up to three
// bytes further, it must also agree with readBlock.
func checkPlainMatchesReadBlock(t *testing.T, data, chunks []byte, limit int) {
	t.Helper()
	r := &chunkReader{data: data, chunks: chunks}
	got, rest, err := readBlockPlain(r, limit)
	idx := bytes.Index(data, blockEnd)
	switch {
	case idx >= 0 && idx+len(blockEnd) <= limit:
		if err != nil || !bytes.Equal(got, data[:idx]) {
			t.Fatalf("readBlockPlain(%q, %d) = %q, %v; want %q", data, limit, got, err, data[:idx])
		}
		after, _ := io.ReadAll(withPrefix(&pipeConn{r: r}, rest))
		if want := data[idx+len(blockEnd):]; !bytes.Equal(after, want) {
			t.Fatalf("after the block of %q, the next reads give %q, want %q", data, after, want)
		}
	case idx < 0 && len(data) < limit:
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("readBlockPlain(%q, %d) error %v, want unexpected EOF", data, limit, err)
		}
	default:
		if !errors.Is(err, ErrBlockTooLong) {
			t.Fatalf("readBlockPlain(%q, %d) error %v, want ErrBlockTooLong", data, limit, err)
		}
	}
	if idx >= 0 && idx+2*len(blockEnd) > limit && idx < limit+len(blockEnd) {
		return // readBlock's own boundary is fuzzy by up to three bytes
	}
	want, wantErr := readBlock(bytes.NewReader(data), limit)
	if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) && err == nil {
		t.Fatalf("readBlockPlain(%q, %d) = %q, %v; readBlock = %q, %v", data, limit, got, err, want, wantErr)
	}
}

// pipeConn is a net.Conn reading from r; only Read may be called.
type pipeConn struct {
	net.Conn
	r io.Reader
}

func (c *pipeConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestReadBlockPlain covers the plaintext block reader against the
// byte-wise one it replaces in the upgrade exchange.
func TestReadBlockPlain(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		chunks []byte
		limit  int
	}{
		{"101 response in one read", string(switchingResponse), nil, MaxBlockSize},
		{"101 response byte by byte", string(switchingResponse), []byte{0}, MaxBlockSize},
		{"terminator split across reads", "GET /id/x HTTP/1.1\r\n\r\n", []byte{19, 0, 0, 0}, MaxBlockSize},
		{"pipelined bytes after the block are kept", "GET /id/x HTTP/1.1\r\n\r\n\x16\x03\x01TLS", nil, MaxBlockSize},
		{"CR CR LF LF is not a terminator", "a\r\r\n\nb\r\n\r\n", []byte{2}, MaxBlockSize},
		{"terminator exactly at the limit", "abcd\r\n\r\n", nil, 8},
		{"too long", "abcdefghij\r\n\r\n", []byte{3}, 8},
		{"EOF before the terminator", "GET / HTTP/1.1\r\n", nil, MaxBlockSize},
		{"empty", "", nil, MaxBlockSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPlainMatchesReadBlock(t, []byte(tt.data), tt.chunks, tt.limit)
		})
	}
}

// FuzzReadBlockPlain checks readBlockPlain against readBlock on any input
// and any way of splitting it into reads.
func FuzzReadBlockPlain(f *testing.F) {
	f.Add(switchingResponse, []byte{}, 4096)
	f.Add([]byte("GET /id/abc HTTP/1.1\r\nHost: x\r\n\r\nmore"), []byte{1, 7, 0}, 4096)
	f.Add([]byte("\r\n\r\n"), []byte{0}, 4)
	f.Add([]byte("x\r\n\r\r\n\r\n"), []byte{2, 1}, 16)
	f.Fuzz(func(t *testing.T, data, chunks []byte, limit int) {
		limit = limit%MaxBlockSize + 1
		if limit < 1 {
			limit += MaxBlockSize
		}
		checkPlainMatchesReadBlock(t, data, chunks, limit)
	})
}
