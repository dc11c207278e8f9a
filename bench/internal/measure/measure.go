// Package measure holds what tubfarm's benchmarks and the comparison with
// Foolscap need to describe a run: the machine it ran on, CPU time and peak
// memory from the kernel, percentiles, and the busiest window of a burst of
// events. Nothing here asserts a timing.
package measure

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes the host a measurement ran on, as docs/performance.md
// reports it next to every figure.
type Machine struct {
	NProc     int    // runtime.NumCPU
	CPU       string // "model name" from /proc/cpuinfo; "" if unknown
	GoVersion string // runtime.Version
	OSArch    string // GOOS/GOARCH
	Load      string // the three load averages from /proc/loadavg; "" if unknown
}

// ReadMachine describes this machine now.
func ReadMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(b)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	return m
}

// cpuModel returns the first "model name" of a /proc/cpuinfo text.
func cpuModel(cpuinfo []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// String is one line: "nproc=2 cpu=... go=go1.26 linux/amd64 load=0.1 0.2 0.3".
func (m Machine) String() string {
	return fmt.Sprintf("nproc=%d cpu=%q %s %s load=%q", m.NProc, m.CPU, m.GoVersion, m.OSArch, m.Load)
}

// CPUTime returns the user and system CPU time this process has used so
// far, all threads included (getrusage RUSAGE_SELF).
func CPUTime() (user, system time.Duration, err error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, fmt.Errorf("measure: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), nil
}

// ChildMaxRSS returns the peak resident set size, in bytes, of an exited
// child process (ru_maxrss, which Linux counts in KiB), or 0 if ps carries
// no rusage.
func ChildMaxRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0
	}
	return ru.Maxrss * 1024
}

// ProcStatus returns a field of /proc/self/status in bytes, for the kB
// fields such as "VmHWM" (peak RSS) and "VmRSS".
func ProcStatus(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("measure: %w", err)
	}
	return statusField(b, field)
}

// statusField parses "Field:   1234 kB" out of a /proc/<pid>/status text.
func statusField(status []byte, field string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("measure: /proc/self/status: %s: unexpected value %q", field, strings.TrimSpace(v))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("measure: /proc/self/status: %s: %w", field, err)
		}
		return n * 1024, nil
	}
	return 0, fmt.Errorf("measure: /proc/self/status has no %s field", field)
}

// RaiseNOFILE raises the soft limit on open files to the hard limit and
// returns the new soft limit.
func RaiseNOFILE() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("measure: getrlimit: %w", err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, fmt.Errorf("measure: setrlimit NOFILE %d: %w", rl.Max, err)
		}
	}
	return rl.Cur, nil
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of ds by the
// nearest-rank method, or 0 for no samples. ds is not modified.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	// Nearest rank: the smallest value with at least p% of samples ≤ it.
	rank := int(p/100*float64(len(s)) + 0.999999999)
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// BusiestWindow returns the largest number of the times ts (offsets from
// any common origin, in any order) that fall within one window [t, t+w).
// A synchronized wave of reconnections shows as a count close to len(ts).
func BusiestWindow(ts []time.Duration, w time.Duration) int {
	s := slices.Clone(ts)
	slices.Sort(s)
	best, lo := 0, 0
	for hi := range s {
		for s[hi]-s[lo] >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}
