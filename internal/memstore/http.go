package memstore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tubfarm/tubfarm/httpstorage"
	"github.com/tubfarm/tubfarm/storage"
)

// Body limits of Tahoe's server; a larger body gets 413.
const (
	maxAllocateBody = 8192
	maxCorruptBody  = 32768
	maxRTWBody      = 1 << 48
	maxPatchBody    = 64 << 20 // this server's own bound on one PATCH
)

// HTTP returns the store as Tahoe's HTTPS storage protocol, for requests
// authorized by swissnum.
func (s *Store) HTTP(swissnum string) http.Handler {
	h := &httpStore{s: s, auth: httpstorage.AuthorizationValue(swissnum)}
	mux := http.NewServeMux()
	const p = "/storage/v1"
	mux.HandleFunc("GET "+p+"/version", h.version)
	mux.HandleFunc("POST "+p+"/immutable/{si}", h.allocate)
	mux.HandleFunc("PATCH "+p+"/immutable/{si}/{n}", h.write)
	mux.HandleFunc("PUT "+p+"/immutable/{si}/{n}/abort", h.abort)
	mux.HandleFunc("GET "+p+"/immutable/{si}/shares", h.shares(storage.Immutable))
	mux.HandleFunc("GET "+p+"/mutable/{si}/shares", h.shares(storage.Mutable))
	mux.HandleFunc("GET "+p+"/immutable/{si}/{n}", h.read(storage.Immutable))
	mux.HandleFunc("GET "+p+"/mutable/{si}/{n}", h.read(storage.Mutable))
	mux.HandleFunc("POST "+p+"/immutable/{si}/{n}/corrupt", h.corrupt(storage.Immutable))
	mux.HandleFunc("POST "+p+"/mutable/{si}/{n}/corrupt", h.corrupt(storage.Mutable))
	mux.HandleFunc("PUT "+p+"/lease/{si}", h.lease)
	mux.HandleFunc("POST "+p+"/mutable/{si}/read-test-write", h.rtw)
	h.mux = mux
	return h
}

type httpStore struct {
	s    *Store
	auth string
	mux  *http.ServeMux
}

func (h *httpStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != h.auth { // byte for byte, as Tahoe
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// secrets checks X-Tahoe-Authorization: the kinds must be exactly want.
func secrets(r *http.Request, want ...string) (map[string][]byte, bool) {
	got := make(map[string][]byte)
	for _, line := range r.Header.Values("X-Tahoe-Authorization") {
		kind, val, ok := strings.Cut(line, " ")
		if !ok || !slices.Contains(want, kind) {
			return nil, false
		}
		if _, dup := got[kind]; dup {
			return nil, false
		}
		b, err := base64.StdEncoding.Strict().DecodeString(val)
		if err != nil || len(b) == 0 {
			return nil, false
		}
		if kind != "upload-secret" && len(b) != 32 {
			return nil, false
		}
		got[kind] = b
	}
	if len(got) != len(want) {
		return nil, false
	}
	return got, true
}

// checks applies the common checks in Tahoe's order: secrets (400),
// Accept (406) for CBOR answers, and Content-Type (415) of a CBOR body.
func checks(w http.ResponseWriter, r *http.Request, cborAnswer, cborBody bool, want ...string) (map[string][]byte, bool) {
	sec, ok := secrets(r, want...)
	if !ok {
		http.Error(w, "bad secrets", http.StatusBadRequest)
		return nil, false
	}
	if cborAnswer {
		if a := r.Header.Get("Accept"); a != "" && !acceptsCBOR(a) {
			http.Error(w, "not acceptable", http.StatusNotAcceptable)
			return nil, false
		}
	}
	if cborBody {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/cbor" {
				http.Error(w, "unsupported media type", http.StatusUnsupportedMediaType)
				return nil, false
			}
		}
	}
	return sec, true
}

// acceptsCBOR: Tahoe answers 406 unless application/cbor is the best match
// (so "*/*" and JSON fail).
func acceptsCBOR(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "application/cbor" && params["q"] != "0" {
			return true
		}
	}
	return false
}

func body(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "bad body", http.StatusBadRequest)
		}
		return nil, false
	}
	return b, true
}

func decode(w http.ResponseWriter, b []byte, v any) bool {
	if err := httpstorage.Unmarshal(b, v); err != nil {
		http.Error(w, "bad CBOR: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeCBOR(w http.ResponseWriter, status int, v any) {
	var b []byte
	var err error
	if raw, ok := v.([]byte); ok {
		b = raw
	} else if b, err = httpstorage.Marshal(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/cbor")
	w.WriteHeader(status)
	w.Write(b)
}

func refusal(w http.ResponseWriter, err error) {
	var r *Refusal
	if errors.As(err, &r) {
		http.Error(w, r.Msg, r.Status)
		return
	}
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

// index parses {si}; Tahoe answers 404 for anything but 26 lowercase
// base32 characters.
func index(w http.ResponseWriter, r *http.Request) (storage.Index, bool) {
	si, err := storage.ParseIndex(r.PathValue("si"))
	if err != nil {
		http.NotFound(w, r)
		return si, false
	}
	return si, true
}

func shareNum(w http.ResponseWriter, r *http.Request) (storage.ShareNum, bool) {
	s := r.PathValue("n")
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || strconv.FormatUint(n, 10) != s {
		http.NotFound(w, r)
		return 0, false
	}
	return storage.ShareNum(n), true
}

func (h *httpStore) version(w http.ResponseWriter, r *http.Request) {
	if _, ok := checks(w, r, true, false); !ok {
		return
	}
	b, err := httpstorage.EncodeVersion(h.s.Version())
	if err != nil {
		refusal(w, err)
		return
	}
	writeCBOR(w, http.StatusOK, b)
}

func (h *httpStore) allocate(w http.ResponseWriter, r *http.Request) {
	si, ok := index(w, r)
	if !ok {
		return
	}
	sec, ok := checks(w, r, true, true, "lease-renew-secret", "lease-cancel-secret", "upload-secret")
	if !ok {
		return
	}
	b, ok := body(w, r, maxAllocateBody)
	if !ok {
		return
	}
	var req httpstorage.AllocateRequest
	if !decode(w, b, &req) {
		return
	}
	have, alloc := h.s.Allocate(si, req.ShareNumbers, req.AllocatedSize, sec["upload-secret"])
	writeCBOR(w, http.StatusOK, httpstorage.AllocateResponse{AlreadyHave: nonNilSet(have), Allocated: nonNilSet(alloc)})
}

func nonNilSet(s []storage.ShareNum) httpstorage.ShareSet {
	if s == nil {
		return httpstorage.ShareSet{}
	}
	return s
}

func (h *httpStore) write(w http.ResponseWriter, r *http.Request) {
	si, ok := index(w, r)
	if !ok {
		return
	}
	n, ok := shareNum(w, r)
	if !ok {
		return
	}
	sec, ok := checks(w, r, true, false, "upload-secret")
	if !ok {
		return
	}
	var a, e uint64
	cr := r.Header.Get("Content-Range")
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/*", &a, &e); err != nil || e < a || fmt.Sprintf("bytes %d-%d/*", a, e) != cr {
		http.Error(w, "bad Content-Range", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	if e-a+1 > maxPatchBody {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	data := make([]byte, e-a+1)
	if _, err := io.ReadFull(r.Body, data); err != nil {
		http.Error(w, "body does not match Content-Range", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	done, missing, err := h.s.Write(si, n, a, data, sec["upload-secret"], true)
	if err != nil {
		refusal(w, err)
		return
	}
	prog := httpstorage.UploadProgress{Required: []httpstorage.Range{}}
	for _, m := range missing {
		prog.Required = append(prog.Required, httpstorage.Range{Begin: m.begin, End: m.end})
	}
	status := http.StatusOK
	if done {
		status = http.StatusCreated
	}
	writeCBOR(w, status, prog)
}

func (h *httpStore) abort(w http.ResponseWriter, r *http.Request) {
	si, ok := index(w, r)
	if !ok {
		return
	}
	n, ok := shareNum(w, r)
	if !ok {
		return
	}
	sec, ok := checks(w, r, false, false, "upload-secret")
	if !ok {
		return
	}
	if err := h.s.Abort(si, n, sec["upload-secret"], true); err != nil {
		refusal(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *httpStore) shares(kind storage.ShareKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		si, ok := index(w, r)
		if !ok {
			return
		}
		if _, ok := checks(w, r, true, false); !ok {
			return
		}
		var list []storage.ShareNum
		if kind == storage.Mutable {
			list = h.s.MutableShares(si)
		} else {
			list = h.s.Shares(si)
		}
		writeCBOR(w, http.StatusOK, nonNilSet(list))
	}
}

// read answers a GET: 200 with the whole share without Range, 206 with
// one closed range, 204 when it starts at or past the end, 416 for any
// other Range.
func (h *httpStore) read(kind storage.ShareKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		si, ok := index(w, r)
		if !ok {
			return
		}
		n, ok := shareNum(w, r)
		if !ok {
			return
		}
		if _, ok := checks(w, r, false, false); !ok {
			return
		}
		length, ok := h.s.Length(kind, si, n)
		if !ok {
			http.NotFound(w, r)
			return
		}
		rg := r.Header.Get("Range")
		var a, e uint64
		whole := rg == ""
		if whole {
			a, e = 0, length
		} else {
			if _, err := fmt.Sscanf(rg, "bytes=%d-%d", &a, &e); err != nil || e < a || fmt.Sprintf("bytes=%d-%d", a, e) != rg {
				http.Error(w, "bad Range", http.StatusRequestedRangeNotSatisfiable)
				return
			}
			if a >= length {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			e++ // exclusive
		}
		var data []byte
		if kind == storage.Mutable {
			data = h.s.ReadMutable(si, []storage.ShareNum{n}, []storage.ReadVector{{Offset: a, Size: e - a}})[n][0]
		} else {
			var err error
			if data, err = h.s.Read(si, n, a, e-a); err != nil {
				refusal(w, err)
				return
			}
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if whole {
			w.WriteHeader(http.StatusOK)
		} else {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", a, a+uint64(len(data))-1))
			w.WriteHeader(http.StatusPartialContent)
		}
		w.Write(data)
	}
}

func (h *httpStore) corrupt(kind storage.ShareKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		si, ok := index(w, r)
		if !ok {
			return
		}
		n, ok := shareNum(w, r)
		if !ok {
			return
		}
		if _, ok := checks(w, r, true, true); !ok {
			return
		}
		b, ok := body(w, r, maxCorruptBody)
		if !ok {
			return
		}
		var req httpstorage.CorruptRequest
		if !decode(w, b, &req) {
			return
		}
		if len(req.Reason) == 0 || len(req.Reason) > storage.MaxReasonLength {
			http.Error(w, "bad reason", http.StatusBadRequest)
			return
		}
		if !h.s.Advise(kind, si, n, req.Reason) {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

func (h *httpStore) lease(w http.ResponseWriter, r *http.Request) {
	si, ok := index(w, r)
	if !ok {
		return
	}
	if _, ok := checks(w, r, false, false, "lease-renew-secret", "lease-cancel-secret"); !ok {
		return
	}
	if !h.s.AddLease(si) {
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *httpStore) rtw(w http.ResponseWriter, r *http.Request) {
	si, ok := index(w, r)
	if !ok {
		return
	}
	sec, ok := checks(w, r, true, true, "write-enabler", "lease-renew-secret", "lease-cancel-secret")
	if !ok {
		return
	}
	b, ok := body(w, r, maxRTWBody)
	if !ok {
		return
	}
	var req httpstorage.RTWRequest
	if !decode(w, b, &req) {
		return
	}
	if len(req.ReadVector) > storage.MaxVectors {
		http.Error(w, "too many read vectors", http.StatusBadRequest)
		return
	}
	tw := make(map[storage.ShareNum]storage.TestWrite, len(req.TestWriteVectors))
	for n, s := range req.TestWriteVectors {
		if n >= storage.MaxShares || len(s.Test) > storage.MaxVectors {
			http.Error(w, "bad test-write vectors", http.StatusBadRequest)
			return
		}
		t := storage.TestWrite{NewLength: s.NewLength}
		for _, tv := range s.Test {
			t.Tests = append(t.Tests, storage.TestVector{Offset: tv.Offset, Size: tv.Size, Specimen: tv.Specimen})
		}
		for _, wv := range s.Write {
			t.Writes = append(t.Writes, storage.WriteVector{Offset: wv.Offset, Data: wv.Data})
		}
		tw[storage.ShareNum(n)] = t
	}
	readv := make([]storage.ReadVector, len(req.ReadVector))
	for i, rv := range req.ReadVector {
		readv[i] = storage.ReadVector{Offset: rv.Offset, Size: rv.Size}
	}
	var we storage.Secret
	copy(we[:], sec["write-enabler"])
	ok, reads, err := h.s.TestAndWrite(si, we, tw, readv)
	if err != nil {
		refusal(w, err)
		return
	}
	data := make(map[uint64][][]byte, len(reads))
	for n, r := range reads {
		data[uint64(n)] = r
	}
	writeCBOR(w, http.StatusOK, httpstorage.RTWResponse{Success: ok, Data: data})
}
