package foolscap

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkEncodeGetVersion encodes the §5.4 get_version answer.
func BenchmarkEncodeGetVersion(b *testing.B) {
	b.ReportAllocs()
	e := NewEncoder(1)
	var buf []byte
	for b.Loop() {
		var err error
		buf, err = e.appendAnswer(buf[:0], "answer", 2, getVersionValue)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeGetVersion decodes the §5.4 get_version answer.
func BenchmarkDecodeGetVersion(b *testing.B) {
	in := wire(b, getVersionAnswer)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	r := bytes.NewReader(in)
	for b.Loop() {
		r.Reset(in)
		if _, err := pbDecoder(r, 2).Decode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnCall measures round trips of a small call on one Conn over
// a loopback TCP pair.
func BenchmarkConnCall(b *testing.B) {
	svc := &testObj{methods: map[string]func(context.Context, []any, map[string]any) (any, error){
		"get_version": func(context.Context, []any, map[string]any) (any, error) { return getVersionValue, nil },
	}}
	na, nb := tcpPair(b)
	a := NewConn(na, ConnConfig{Vocab: 1, Lookup: func([]byte) (Referenceable, bool) { return svc, true }})
	c := NewConn(nb, ConnConfig{Vocab: 1})
	defer a.Close()
	defer c.Close()
	ctx := context.Background()
	ref, err := c.GetReference(ctx, "svc")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ref.Call(ctx, "get_version", nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ref.Call(ctx, "get_version", nil, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
