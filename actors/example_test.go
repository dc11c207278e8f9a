package actors_test

import (
	"fmt"
	"time"

	"github.com/tubfarm/tubfarm/actors"
)

// The nominal (jitter-free) reconnection schedule of DefaultBackoff: pass
// 0.5 as the random draw.
func ExampleBackoff_Delay() {
	var delays []time.Duration
	for failures := 1; failures <= 11; failures++ {
		delays = append(delays, actors.DefaultBackoff.Delay(failures, 0.5))
	}
	fmt.Println(delays)
	// With the extreme draws, the first retry comes between 0.8 s and 1.2 s.
	fmt.Println(actors.DefaultBackoff.Delay(1, 0), actors.DefaultBackoff.Delay(1, 0.999999999))
	fmt.Println(actors.DefaultBackoff.MaxDelayWithJitter().Round(time.Second))
	// Output:
	// [1s 2s 4s 8s 16s 32s 1m4s 2m8s 4m16s 5m0s 5m0s]
	// 800ms 1.199999999s
	// 6m0s
}
