package memstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/tubfarm/tubfarm/httpstorage"
	"github.com/tubfarm/tubfarm/storage"
)

// The HTTPS side makes Tahoe's checks, in Tahoe's order: authorization
// (401), secrets (400), Accept (406), Content-Type (415), body size (413).
func TestHTTPChecks(t *testing.T) {
	srv := startServer(t)
	tr := &http.Transport{DialTLSContext: func(ctx context.Context, network, addr string) (netConn, error) {
		return dialPinned(ctx, srv.NURL)
	}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	auth := httpstorage.AuthorizationValue(srv.Swiss)
	secret := func(kind string, n int) string {
		return kind + " " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, n))
	}
	si := storage.Index{1}.String()
	allocBody, _ := httpstorage.Marshal(httpstorage.AllocateRequest{ShareNumbers: httpstorage.ShareSet{0}, AllocatedSize: 10})
	lease := []string{secret("lease-renew-secret", 32), secret("lease-cancel-secret", 32), secret("upload-secret", 20)}
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		auth    string
		secrets []string
		header  map[string]string
		body    []byte
		want    int
	}{
		{"version", "GET", "/version", auth, nil, nil, nil, 200},
		{"no authorization", "GET", "/version", "", nil, nil, nil, 401},
		{"scheme in lower case", "GET", "/version", strings.Replace(auth, "Tahoe-LAFS", "tahoe-lafs", 1), nil, nil, nil, 401},
		{"wrong swissnum, bad secrets", "POST", "/immutable/" + si, "Tahoe-LAFS eA==", []string{"bogus x"}, nil, allocBody, 401},
		{"extra secret on version", "GET", "/version", auth, []string{secret("upload-secret", 20)}, nil, nil, 400},
		{"allocate", "POST", "/immutable/" + si, auth, lease, nil, allocBody, 200},
		{"missing secret", "POST", "/immutable/" + si, auth, lease[:2], nil, allocBody, 400},
		{"short lease secret", "POST", "/immutable/" + si, auth, []string{secret("lease-renew-secret", 31), lease[1], lease[2]}, nil, allocBody, 400},
		{"unknown kind", "POST", "/immutable/" + si, auth, append([]string{secret("other", 32)}, lease[1:]...), nil, allocBody, 400},
		{"secrets joined by a comma", "POST", "/immutable/" + si, auth, []string{strings.Join(lease, ", ")}, nil, allocBody, 400},
		{"accept anything", "GET", "/version", auth, nil, map[string]string{"Accept": "*/*"}, nil, 406},
		{"accept JSON", "GET", "/version", auth, nil, map[string]string{"Accept": "application/json"}, nil, 406},
		{"JSON body", "POST", "/immutable/" + si, auth, lease, map[string]string{"Content-Type": "application/json"}, allocBody, 415},
		{"body over 8192 bytes", "POST", "/immutable/" + si, auth, lease, nil, make([]byte, 8193), 413},
		{"set without its tag", "POST", "/immutable/" + si, auth, lease, nil, []byte{0xa2, 0x6d, 's', 'h', 'a', 'r', 'e', '-', 'n', 'u', 'm', 'b', 'e', 'r', 's', 0x81, 0x00, 0x6e, 'a', 'l', 'l', 'o', 'c', 'a', 't', 'e', 'd', '-', 's', 'i', 'z', 'e', 0x0a}, 400},
		{"upper-case storage index", "GET", "/immutable/" + strings.ToUpper(si) + "/shares", auth, nil, nil, nil, 404},
		{"read of a share still uploading", "GET", "/immutable/" + si + "/0", auth, nil, map[string]string{"Range": "bytes=0-5"}, nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body *bytes.Reader
			if tc.body != nil {
				body = bytes.NewReader(tc.body)
			} else {
				body = bytes.NewReader(nil)
			}
			req, err := http.NewRequest(tc.method, "https://"+srv.NURL.Addr()+"/storage/v1"+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			req.Header.Set("Accept", "application/cbor")
			if tc.body != nil {
				req.Header.Set("Content-Type", "application/cbor")
			}
			for _, s := range tc.secrets {
				req.Header.Add("X-Tahoe-Authorization", s)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
