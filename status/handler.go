// Package status serves a tubfarm broker's status to people and programs:
// an HTML page in the manner of Tahoe-LAFS's Welcome page, the same data as
// JSON at ?t=json, and the broker's Prometheus metrics at /metrics.
//
// A [Handler] is an ordinary http.Handler, so an application that embeds
// the broker can mount it on its own mux:
//
//	reg := prometheus.NewRegistry()
//	b, _ := tubfarm.Open(dir, tubfarm.Options{Registerer: reg})
//	mux.Handle("/tubfarm/", http.StripPrefix("/tubfarm", status.NewHandler(b, status.Options{Gatherer: reg})))
//
// Relative to where it is mounted, the handler serves:
//
//	/  and  /status     the status page (GET, HEAD)
//	?t=json             on either path: the [Report] as JSON
//	/metrics            the Prometheus text format, if Options.Gatherer is set
//
// The page refreshes its table in place every Options.Refresh, without
// reloading, and falls back to a plain reload when scripts are off. It
// loads nothing from elsewhere and is served with a Content-Security-Policy
// that allows only its own inline style and script (by hash).
//
// The page and the JSON show server addresses, nicknames and the client
// TubID each server sees: serve them on loopback, or behind authentication,
// never to the storage servers themselves.
package status

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tubfarm/tubfarm/actors"
)

// A Source supplies the status snapshots a [Handler] shows.
// *tubfarm.Broker and *actors.Broker (through its Servers method, wrapped
// with [SourceFunc]) are sources.
type Source interface {
	// Statuses returns a snapshot of every server.
	Statuses() []actors.Status
}

// SourceFunc adapts a function to a [Source].
type SourceFunc func() []actors.Status

// Statuses calls f.
func (f SourceFunc) Statuses() []actors.Status { return f() }

// DefaultRefresh is how often the page refreshes itself when
// Options.Refresh is zero.
const DefaultRefresh = 2 * time.Second

// Options configures a [Handler]. The zero value serves the page and the
// JSON, refreshing every DefaultRefresh, and no metrics.
type Options struct {
	// Node names the node in the page title and in Report.Node (for
	// instance tahoe.cfg's [node] nickname).
	Node string

	// Gatherer, if set, is served at /metrics in the Prometheus text
	// format; give it the registry passed to tubfarm.Options.Registerer.
	Gatherer prometheus.Gatherer

	// Refresh is how often the page refreshes its table. Zero means
	// DefaultRefresh; a negative value turns refreshing off.
	Refresh time.Duration

	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// A Handler serves a broker's status page, JSON and metrics (see the
// package documentation for the paths). It is safe for concurrent use.
type Handler struct {
	src     Source
	opts    Options
	metrics http.Handler
}

// NewHandler returns a handler showing src.
func NewHandler(src Source, opts Options) *Handler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Refresh == 0 {
		opts.Refresh = DefaultRefresh
	}
	h := &Handler{src: src, opts: opts}
	if opts.Gatherer != nil {
		h.metrics = promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{})
	}
	return h
}

// Report returns a snapshot of the source now, as served at ?t=json.
func (h *Handler) Report() Report {
	r := NewReport(h.opts.Node, h.src.Statuses(), h.opts.Now())
	if is, ok := h.src.(IntroducerSource); ok {
		addIntroducers(&r, is)
	}
	return r
}

// ServeHTTP serves the page, the JSON or the metrics, by path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/", "", "/status":
	case "/metrics":
		if h.metrics == nil {
			http.Error(w, "status: no metrics registry configured", http.StatusNotFound)
			return
		}
		h.metrics.ServeHTTP(w, r)
		return
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "status: method "+r.Method+" not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	switch t := r.URL.Query().Get("t"); t {
	case "json":
		h.serveJSON(w)
	case "", "html":
		h.serveHTML(w)
	default:
		http.Error(w, "status: unknown output type t="+t+" (want json or html)", http.StatusBadRequest)
	}
}

func (h *Handler) serveJSON(w http.ResponseWriter) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(h.Report()); err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(buf.Bytes())
}

func (h *Handler) serveHTML(w http.ResponseWriter) {
	var buf bytes.Buffer
	if err := renderPage(&buf, h.Report(), h.opts.Refresh, h.metrics != nil); err != nil {
		http.Error(w, "status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	w.Write(buf.Bytes())
}
