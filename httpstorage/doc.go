// Package httpstorage is a client of Tahoe-LAFS's HTTPS storage protocol
// (Tahoe 1.19 and later), implementing storage.Server.
//
// A [Client] is made for one server from its NURL (hints.ParseNURL). It
// owns an http.Transport of its own, so no connection, TLS state or idle
// pool is ever shared between servers; it sends no client certificate, no
// SNI, no ALPN, no User-Agent and no cookies, and never resumes a TLS
// session. The server's certificate is accepted if and only if its SPKI
// hash is the NURL's: no CA, no host name and no dates are checked.
//
// Requests carry "Authorization: Tahoe-LAFS <base64 swissnum>" and one
// X-Tahoe-Authorization line per secret; bodies are CBOR
// (github.com/fxamacker/cbor/v2, decoded under caps on size, nesting and
// item counts). Answers are checked for status, content type and size, and
// bounded in time: [DefaultHeaderTimeout] for the headers and
// [DefaultBodyTimeout] of silence while a body arrives, as Tahoe's client.
// docs/storage.md describes the protocol and where it differs from
// Foolscap.
package httpstorage
