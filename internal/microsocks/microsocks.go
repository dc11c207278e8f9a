// Package microsocks runs Debian's microsocks, a real SOCKS5 server, for
// tests. The test fails (it does not skip) when microsocks is missing:
// scripts/test.sh installs it.
package microsocks

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Start runs microsocks on a free 127.0.0.1 port with extra arguments
// (e.g. "-u", user, "-P", password, or "-b", an address to bind outgoing
// connections to) and returns its address once it accepts connections. The
// process is killed and waited for when the test ends.
func Start(t testing.TB, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("microsocks")
	if err != nil {
		t.Fatalf("microsocks is required (apt-get install microsocks; scripts/test.sh installs it): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, bin, append([]string{"-i", "127.0.0.1", "-p", port}, args...)...)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		cancel()
	})
	// microsocks has no readiness signal: dial until it listens, stopping
	// early if it exits.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("microsocks exited: %v", err)
		case <-ctx.Done():
			t.Fatal("microsocks did not start listening")
		case <-tick.C:
		}
	}
}
