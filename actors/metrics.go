package actors

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tubfarm/tubfarm/messages"
)

// Handshake phase label values of tubfarm_handshake_duration_seconds.
const (
	phaseDial         = "dial"
	phaseUpgrade      = "upgrade"
	phaseTLS          = "tls"
	phaseNegotiation  = "negotiation"
	phaseGetReference = "get_reference"
	phaseGetVersion   = "get_version"
	phaseTotal        = "total"
)

var phases = []string{phaseDial, phaseUpgrade, phaseTLS, phaseNegotiation, phaseGetReference, phaseGetVersion, phaseTotal}

// metrics holds one broker's collectors. They are per instance and
// registered with the Registerer given to New (never the global one), so
// several brokers can live in one process; wrap the Registerer with
// prometheus.WrapRegistererWith to tell them apart. No label carries a
// server ID or address: every label takes values from a closed set.
type metrics struct {
	identitySeconds    prometheus.Histogram
	handshakeSeconds   *prometheus.HistogramVec // phase, handler
	attempts           *prometheus.CounterVec   // handler
	sessions           *prometheus.CounterVec   // protocol
	failures           *prometheus.CounterVec   // handler, reason
	disconnects        *prometheus.CounterVec   // handler, reason
	states             *prometheus.GaugeVec     // state
	revealingIP        prometheus.Gauge         // servers_revealing_ip
	restarts           prometheus.Counter       // server actors
	brokerRestarts     prometheus.Counter
	backoffSeconds     prometheus.Histogram
	illegalTransitions prometheus.Counter
	droppedEvents      prometheus.Counter

	restartsVec *prometheus.CounterVec

	reg        prometheus.Registerer
	registered []prometheus.Collector
}

// newMetrics makes the collectors of a broker of children of kind k. With
// ServerKind they have the names in docs/metrics.md.
func newMetrics(k Kind) *metrics {
	const ns = "tubfarm"
	sub := k.Subsystem
	restarts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns,
		Subsystem: sub,
		Name:      "actor_restarts_total",
		Help:      "Restarts of actors after a panic, by actor kind (" + k.Name + " or broker).",
	}, []string{"actor"})
	m := &metrics{
		restartsVec: restarts,
		identitySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      "identity_generation_seconds",
			Help:      "Time to generate one ephemeral Tub identity (key pair and self-signed certificate).",
			Buckets:   prometheus.ExponentialBuckets(1e-5, 4, 10),
		}),
		handshakeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      "handshake_duration_seconds",
			Help:      "Duration of each phase of successful connection attempts, by phase and handler.",
			Buckets:   prometheus.ExponentialBuckets(1e-4, 2, 18),
		}, []string{"phase", "handler"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      "sessions_total",
			Help:      "Sessions established, by storage protocol (https or foolscap).",
		}, []string{"protocol"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      "connect_attempts_total",
			Help:      "Connection attempts that ended, by the handler that won or that the failure is attributed to.",
		}, []string{"handler"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      "connect_failures_total",
			Help:      "Connection attempts that failed, by handler and classified reason.",
		}, []string{"handler", "reason"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      "disconnects_total",
			Help:      "Established sessions that were lost, by handler and classified reason.",
		}, []string{"handler", "reason"}),
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns,
			Name:      k.Plural,
			Help:      "Children (" + k.Plural + ") held by the broker, by connection state.",
		}, []string{"state"}),
		revealingIP: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns,
			Name:      k.Plural + "_revealing_ip",
			Help:      "Children (" + k.Plural + ") whose connection policy dials some hints directly over TCP, revealing the client's IP address.",
		}),
		restarts:       restarts.WithLabelValues(k.Name),
		brokerRestarts: restarts.WithLabelValues("broker"),
		backoffSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      "backoff_delay_seconds",
			Help:      "Delays scheduled before the next connection attempt, including restart delays.",
			Buckets:   prometheus.ExponentialBuckets(0.05, 2, 18),
		}),
		illegalTransitions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      "illegal_transitions_total",
			Help:      "State transitions refused as illegal; any non-zero value is a bug.",
		}),
		droppedEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns,
			Subsystem: sub,
			Name:      "subscriber_events_dropped_total",
			Help:      "StateChanged events not delivered because a subscriber's buffer was full.",
		}),
	}
	// Zero-initialise every series whose labels are known, so that a rate
	// or a state that empties out reads 0 rather than missing.
	for i := range messages.NumStates {
		m.states.WithLabelValues(messages.State(i).String())
	}
	for _, h := range handlers {
		m.attempts.WithLabelValues(h)
		for _, r := range reasons {
			m.failures.WithLabelValues(h, string(r))
			m.disconnects.WithLabelValues(h, string(r))
		}
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.identitySeconds, m.handshakeSeconds, m.attempts, m.sessions, m.failures, m.disconnects,
		m.states, m.revealingIP, m.restartsVec, m.backoffSeconds, m.illegalTransitions, m.droppedEvents,
	}
}

// register registers every collector with reg, or none: on an error the ones
// already registered are unregistered again.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	m.reg = reg
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			m.unregister()
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return errors.New("actors: metrics already registered (wrap the Registerer with prometheus.WrapRegistererWith for a second broker)")
			}
			return err
		}
		m.registered = append(m.registered, c)
	}
	return nil
}

func (m *metrics) unregister() {
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

// countRevealing counts the specs whose policy reveals the client's IP
// address, for tubfarm_servers_revealing_ip.
func countRevealing(specs []messages.ServerSpec) int {
	n := 0
	for _, s := range specs {
		if s.RevealsIP {
			n++
		}
	}
	return n
}
