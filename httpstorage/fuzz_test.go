package httpstorage_test

import (
	"encoding/hex"
	"testing"

	"github.com/tubfarm/tubfarm/httpstorage"
)

// The decoders of answers never panic and stay within their caps, whatever
// the bytes.
func FuzzDecodeAnswers(f *testing.F) {
	golden, _ := hex.DecodeString(goldenVersion)
	f.Add(golden)
	f.Add([]byte{0xd9, 0x01, 0x02, 0x82, 0x00, 0x01})
	f.Add([]byte{0xa2, 0x67, 's', 'u', 'c', 'c', 'e', 's', 's', 0xf5, 0x64, 'd', 'a', 't', 'a', 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := httpstorage.DecodeVersion(b); err == nil && len(v.ApplicationVersion) > 200 {
			t.Fatalf("application version of %d bytes", len(v.ApplicationVersion))
		}
		var set httpstorage.ShareSet
		if err := httpstorage.Unmarshal(b, &set); err == nil && len(set) > 256 {
			t.Fatalf("%d share numbers", len(set))
		}
		var rtw httpstorage.RTWResponse
		_ = httpstorage.Unmarshal(b, &rtw)
		var alloc httpstorage.AllocateResponse
		_ = httpstorage.Unmarshal(b, &alloc)
	})
}
