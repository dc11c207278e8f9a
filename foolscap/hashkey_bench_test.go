package foolscap

import (
	"bytes"
	"fmt"
	"math/big"
	"strings"
	"testing"
)

// BenchmarkHashKeyHostile hashes the keys of the hostile families: a
// LONGINT set member, frozensets nested 60 deep with 1 KiB each, and a
// tuple whose expansion doubles at every level (shared references).
func BenchmarkHashKeyHostile(b *testing.B) {
	for _, n := range []int{64 << 10, 1 << 20} {
		x := new(big.Int).SetBytes(bytes.Repeat([]byte{0xa5}, n))
		b.Run(fmt.Sprintf("longint/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				hashKey(x)
			}
		})
	}
	for _, depth := range []int{15, 30, 60} {
		var v any = []byte("leaf")
		for i := range depth {
			v = FrozenSet{[]byte(fmt.Sprintf("%04d", i) + strings.Repeat("m", 1020)), v}
		}
		b.Run(fmt.Sprintf("nested_frozensets/%d", depth), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				hashKey(v)
			}
		})
	}
	for _, levels := range []int{8, 12, 16} {
		var v any = Tuple{[]byte("x")}
		for range levels {
			v = Tuple{v, v}
		}
		b.Run(fmt.Sprintf("shared_tuple/%d", levels), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				hashKey(v)
			}
		})
	}
}
