package hints_test

import (
	"fmt"

	"github.com/tubfarm/tubfarm/hints"
)

func ExamplePolicy_DecideFURL() {
	// tahoe.cfg: [connections] tcp = tor, [node] reveal-IP-address = false.
	p, err := hints.NewPolicy(hints.HandlerTor, false, true, false)
	if err != nil {
		panic(err)
	}
	f, err := hints.ParseFURL("pb://u33m4y7klhz3bypswqkozwetvabelhxt@tcp:10.1.2.3:51298,tor:abcdefghijklmnop.onion:3457,foo:bar/eiu2i7p6d6mm4ihmss7ieou5hac3wn6b")
	if err != nil {
		panic(err)
	}
	for _, d := range p.DecideFURL(f) {
		fmt.Println(d)
	}
	// Output:
	// tcp:10.1.2.3:51298 via tor: bad hint: ignoring non-Tor-able ipaddr 10.1.2.3
	// tor:abcdefghijklmnop.onion:3457 via tor
	// foo:bar: bad hint: no handler registered
}
