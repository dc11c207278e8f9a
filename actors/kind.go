package actors

import (
	"errors"
	"regexp"
)

// A Kind names the children a [Broker] supervises, in its metric names and
// logs. Every kind runs the same lifecycle (docs/state-machine.md); a
// program that supervises two kinds of peer (storage servers and
// introducers, say) runs one Broker per kind, each with its own Kind, and
// may register both with one Registerer.
type Kind struct {
	// Name is the singular noun for one child: the log attribute that
	// carries its ID, and the actor label of the restarts counter. "server"
	// for ServerKind.
	Name string

	// Plural names the per-state gauge, tubfarm_<Plural>{state}, and the
	// revealing-IP gauge, tubfarm_<Plural>_revealing_ip. "servers" for
	// ServerKind.
	Plural string

	// Subsystem, if not empty, goes between "tubfarm_" and the name of
	// every other metric: tubfarm_<Subsystem>_connect_attempts_total. It is
	// empty for ServerKind, whose metrics are listed in docs/metrics.md.
	Subsystem string
}

// ServerKind is the Kind of storage servers, the default.
var ServerKind = Kind{Name: "server", Plural: "servers"}

var metricWord = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// validate reports a Kind whose names cannot make metric names, or that
// would give its metrics the names of ServerKind's.
func (k Kind) validate() error {
	if !metricWord.MatchString(k.Name) || !metricWord.MatchString(k.Plural) ||
		k.Subsystem != "" && !metricWord.MatchString(k.Subsystem) {
		return errors.New("actors: Kind.Name, Kind.Plural and Kind.Subsystem must be lower-case metric name words")
	}
	if k != ServerKind && k.Subsystem == "" {
		return errors.New("actors: a Kind other than ServerKind needs a Subsystem, so that its metrics have names of their own")
	}
	return nil
}
