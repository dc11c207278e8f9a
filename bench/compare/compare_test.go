package main

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tubfarm/tubfarm/bench/internal/gridproc"
	"github.com/tubfarm/tubfarm/internal/pyfoolscap"
)

// TestMain lets the test binary double as the comparison's child processes
// (the Go grid servers and the tubfarm clients), as the command does.
func TestMain(m *testing.M) {
	gridproc.MaybeServe()
	maybeClient()
	goleak.VerifyTestMain(m)
}

// TestCompareSmall runs the whole comparison at a small scale, so that the
// command cannot rot: every row must be there with a measured time and
// memory, and every ratio and goal line must be printed. It asserts no
// timing.
func TestCompareSmall(t *testing.T) {
	python := pyfoolscap.Python(t) // fails, never skips, without Foolscap
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errs bytes.Buffer
	args := []string{"-servers", "3", "-py-procs", "2", "-rounds", "2", "-id-samples", "20", "-py-id-samples", "2", "-server-key", "ecdsa", "-python", python}
	if err := run(ctx, args, &out, &errs); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, errs.String())
	}
	report := out.String()
	t.Logf("report:\n%s", report)
	for _, want := range []string{
		"tubfarm vs Foolscap, 3 servers of each kind",
		"machine: nproc=",
		"identity creation, Foolscap Tub() / tubfarm (p50)",
		"3 servers connected, Foolscap Tub per server / tubfarm per server",
		"tubfarm per server / shared identity (Go servers)",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	measured := regexp.MustCompile(`  ([0-9.]+ (µs|ms|s))  +([0-9.]+ (µs|ms|s))  +([0-9.]+ (µs|ms|s))  +([0-9.]+) MiB$`)
	for _, r := range []struct{ client, servers string }{
		{fsPerTub, srvFoolscap}, {fsShared, srvFoolscap},
		{tfPerServer, srvFoolscap}, {tfShared, srvFoolscap},
		{tfPerServer, srvGo}, {tfShared, srvGo},
	} {
		var line string
		for _, l := range strings.Split(report, "\n") {
			if strings.Contains(l, r.client) && strings.Contains(l, r.servers) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("no row for %s against %s servers", r.client, r.servers)
			continue
		}
		m := measured.FindStringSubmatch(strings.TrimRight(line, " "))
		if m == nil {
			t.Errorf("row %q does not end in three times and a memory figure", line)
			continue
		}
		if m[7] == "0.0" {
			t.Errorf("row %q reports no peak RSS", line)
		}
	}
	if n := strings.Count(report, "goal "); n != 4 {
		t.Errorf("report has %d goal verdicts, want 4", n)
	}
}

// TestFlags covers the command line's refusals.
func TestFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-servers", "0"}, "-servers 0: want at least 1"},
		{[]string{"-rounds", "0"}, "-rounds 0: want at least 1"},
		{[]string{"-py-procs", "0"}, "-py-procs 0: want at least 1"},
		{[]string{"-id-samples", "0"}, "want at least 1 each"},
		{[]string{"-server-key", "dsa"}, `-server-key "dsa": want rsa or ecdsa`},
		{[]string{"extra"}, `unexpected arguments ["extra"]`},
		{[]string{"-no-such-flag"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var errs bytes.Buffer
			err := run(context.Background(), tt.args, &bytes.Buffer{}, &errs)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
	c, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil || c.servers != 100 || c.pyProcs != 1 || c.rounds != 3 || c.serverKey != "rsa" || c.python != "/usr/bin/python3" {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

// TestSplit checks how servers are spread over Python processes.
func TestSplit(t *testing.T) {
	tests := []struct {
		n, parts int
		want     []int
	}{
		{5, 1, []int{5}},
		{5, 2, []int{2, 3}},
		{6, 3, []int{2, 2, 2}},
		{2, 4, []int{1, 1}},
	}
	for _, tt := range tests {
		s := make([]int, tt.n)
		for i := range s {
			s[i] = i
		}
		var lens []int
		var joined []int
		for _, p := range split(s, tt.parts) {
			lens = append(lens, len(p))
			joined = append(joined, p...)
		}
		if !slices.Equal(lens, tt.want) || !slices.Equal(joined, s) {
			t.Errorf("split(%d items, %d) gives parts of %v covering %v, want %v covering all in order", tt.n, tt.parts, lens, joined, tt.want)
		}
	}
}

// TestMissingPython checks the command fails clearly, naming the package,
// when the interpreter cannot import Foolscap.
func TestMissingPython(t *testing.T) {
	err := run(context.Background(), []string{"-servers", "1", "-python", "/nonexistent/python3"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "python3-foolscap is required") {
		t.Errorf("run with a missing interpreter = %v, want the python3-foolscap error", err)
	}
}
