package actors

import (
	"log/slog"
	"net/url"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/tubfarm/tubfarm/messages"
)

// The broker actor is a root actor. If it panics more than
// maxBrokerRestarts times within brokerRestartWindow, protoactor stops it
// for good and the Broker's methods return ErrClosed.
const (
	maxBrokerRestarts   = 10
	brokerRestartWindow = time.Minute
)

// Messages the broker actor receives.
type (
	// applyRequest: Broker.Apply → broker actor. done is closed once the
	// diff has been acted on.
	applyRequest struct {
		specs map[string]messages.ServerSpec
		done  chan struct{}
	}
	// tryNowRequest: Broker.TryNow/TryNowAll → broker actor.
	tryNowRequest struct {
		id  string
		all bool
	}
	// connectedNotice: server actor → broker actor, when it connected.
	connectedNotice struct {
		id string
		at time.Time
	}
)

func (*applyRequest) IgnoreDeadLetterLogging()    {}
func (*tryNowRequest) IgnoreDeadLetterLogging()   {}
func (*connectedNotice) IgnoreDeadLetterLogging() {}

// brokerActor supervises one server actor per server. It owns the desired
// spec set (kept in the Broker so it survives the actor's restarts) and the
// status store's membership. Its producer has no side effects.
//
// A restart of the broker actor stops all its children (protoactor does
// that before the new incarnation starts); the new incarnation rebuilds them
// all from the desired set in Started.
type brokerActor struct {
	b *Broker

	children   map[string]*child // by server ID; includes children being stopped
	byPID      map[string]*child // by PID.Id
	restarting bool
	stopping   bool
}

// child is the broker's record of one server actor.
type child struct {
	pid      *actor.PID
	spec     messages.ServerSpec
	slot     *slot
	stopping bool // Stop sent; the name is free only after Terminated
}

var (
	_ actor.Actor              = (*brokerActor)(nil)
	_ actor.SupervisorStrategy = (*brokerActor)(nil)
)

// Receive handles one message on the broker actor's mailbox.
func (a *brokerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.children = make(map[string]*child)
		a.byPID = make(map[string]*child)
		a.reconcile(ctx)
	case *applyRequest:
		a.b.desired = m.specs
		a.reconcile(ctx)
		close(m.done)
	case *tryNowRequest:
		for id, c := range a.children {
			if !c.stopping && (m.all || id == m.id) {
				ctx.Send(c.pid, &tryNow{})
			}
		}
	case *connectedNotice:
		if !a.b.sh.cfg.IsolatedBackoff {
			for id, c := range a.children {
				// Only servers waiting to retry are told: with N servers
				// connecting at once, telling every child would cost N²
				// messages. The snapshot may be a little stale; the child
				// checks its own state.
				if !c.stopping && id != m.id && c.slot.status.Load().State == WaitingToRetry {
					ctx.Send(c.pid, &peerConnected{at: m.at})
				}
			}
		}
	case *actor.Terminated:
		a.reap(ctx, m.Who)
	case *actor.Restarting:
		a.restarting = true
	case *actor.Stopping:
		a.stopping = true
	case *actor.Stopped:
		a.b.stopOnce.Do(func() { close(a.b.stopped) })
	case *crash:
		panic(m.reason)
	}
}

// reconcile brings the children in line with the desired set. A server no
// longer desired leaves the status store here, so that Apply returns with
// the store holding the new set. A child whose connection changed (see
// messages.ServerSpec.SameConnection) is only stopped here; its replacement
// is spawned by the reconcile that follows its Terminated, because its name
// is taken until then (protoactor's ErrNameExists).
func (a *brokerActor) reconcile(ctx actor.Context) {
	if a.restarting || a.stopping {
		return
	}
	for id, c := range a.children {
		if c.stopping {
			continue
		}
		spec, ok := a.b.desired[id]
		switch {
		case !ok || !spec.SameConnection(c.spec):
			c.stopping = true
			ctx.Stop(c.pid)
			if !ok {
				a.unlist(id, c.slot)
			}
		case !reflect.DeepEqual(spec, c.spec):
			c.spec = spec
			ctx.Send(c.pid, &updateSpec{spec: spec})
		}
	}
	for id, spec := range a.b.desired {
		if _, ok := a.children[id]; !ok {
			a.spawn(ctx, spec)
		}
	}
}

// spawn starts the server actor for spec, named after its ID.
func (a *brokerActor) spawn(ctx actor.Context, spec messages.ServerSpec) {
	sh := a.b.sh
	s := newSlot(sh, spec)
	props := actor.PropsFromProducer(func() actor.Actor { return &serverActor{slot: s} },
		actor.WithReceiverMiddleware(recordPanics(s)))
	// The slot is published before the child starts, so that the server
	// is in Servers() by the time its first event can be observed.
	a.b.mu.Lock()
	prev, hadPrev := a.b.slots[spec.ID]
	a.b.slots[spec.ID] = s
	a.b.mu.Unlock()
	pid, err := ctx.SpawnNamed(props, url.PathEscape(spec.ID))
	if err != nil {
		// Not expected: names are reused only after Terminated. The
		// server is retried at the next reconcile.
		a.b.mu.Lock()
		if hadPrev {
			a.b.slots[spec.ID] = prev
		} else {
			delete(a.b.slots, spec.ID)
		}
		a.b.mu.Unlock()
		_ = s.transition(Stopped, change{kind: leave})
		sh.log.Error("actors: cannot spawn child actor", slog.String(sh.kind.Name, spec.ID), slog.Any("error", err))
		return
	}
	c := &child{pid: pid, spec: spec, slot: s}
	a.children[spec.ID] = c
	a.byPID[pid.Id] = c
}

// reap forgets a terminated child and, unless the broker is going down,
// reconciles, which spawns the replacement of a replaced server before the
// old slot leaves the status store (so the server never looks removed).
func (a *brokerActor) reap(ctx actor.Context, who *actor.PID) {
	c, ok := a.byPID[who.Id]
	if !ok {
		return
	}
	delete(a.byPID, who.Id)
	id := c.spec.ID
	if a.children[id] == c {
		delete(a.children, id)
	}
	a.reconcile(ctx)
	a.unlist(id, c.slot)
	_ = c.slot.transition(Stopped, change{kind: leave})
}

// unlist removes s from the status store, unless a replacement holds id.
func (a *brokerActor) unlist(id string, s *slot) {
	a.b.mu.Lock()
	if a.b.slots[id] == s {
		delete(a.b.slots, id)
	}
	a.b.mu.Unlock()
}

// HandleFailure is the supervisor strategy for the server actors: a child
// that panicked is restarted alone, always; the restart delay is applied by
// the child itself (see serverActor.restarting), so the failure count is not
// protoactor's concern. A child that is being stopped, or whose broker is
// going down, is stopped instead.
func (a *brokerActor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, who *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	c, ok := a.byPID[who.Id]
	if !ok || c.stopping || a.stopping || a.restarting {
		sup.StopChildren(who)
		return
	}
	a.b.sh.m.restarts.Inc()
	a.b.sh.log.Warn("actors: restarting child actor after panic", slog.String(a.b.sh.kind.Name, c.spec.ID),
		slog.Any("reason", reason))
	sup.RestartChildren(who)
}

// brokerGuardian supervises the broker actor: it counts and logs the
// restart and defers the decision to inner.
type brokerGuardian struct {
	inner actor.SupervisorStrategy
	m     *metrics
	log   *slog.Logger
}

// HandleFailure implements actor.SupervisorStrategy.
func (g *brokerGuardian) HandleFailure(sys *actor.ActorSystem, sup actor.Supervisor, who *actor.PID, rs *actor.RestartStatistics, reason, msg any) {
	g.m.brokerRestarts.Inc()
	g.log.Error("actors: broker actor failed; restarting it and all its servers", slog.Any("reason", reason))
	g.inner.HandleFailure(sys, sup, who, rs, reason, msg)
}

// logBrokerPanics logs the stack of a broker actor panic and panics again.
func logBrokerPanics(log *slog.Logger) actor.ReceiverMiddleware {
	return func(next actor.ReceiverFunc) actor.ReceiverFunc {
		return func(c actor.ReceiverContext, env *actor.MessageEnvelope) {
			defer func() {
				if v := recover(); v != nil {
					log.Error("actors: broker actor panicked", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
					panic(v)
				}
			}()
			next(c, env)
		}
	}
}
