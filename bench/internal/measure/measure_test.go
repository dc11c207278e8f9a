package measure

import (
	"strings"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", ms(7), 95, 7 * time.Millisecond},
		{"median of odd count, unsorted", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p95 of 1..20", ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 95, 19 * time.Millisecond},
		{"p100 is the max", ms(2, 9, 4), 100, 9 * time.Millisecond},
		{"p0 is the min", ms(2, 9, 4), 0, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tt.in...)
			if got := Percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.in, tt.p, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("Percentile reordered its input: %v", tt.in)
				}
			}
		})
	}
}

func TestBusiestWindow(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want int
	}{
		{"empty", nil, 0},
		{"one", ms(5), 1},
		{"all in one window", ms(10, 50, 99, 0), 4},
		{"window is half-open", ms(0, 100), 1},
		{"spread evenly", ms(0, 100, 200, 300), 1},
		{"burst in the middle", ms(0, 500, 510, 520, 599, 1000), 4},
		{"unsorted input", ms(520, 0, 599, 510, 1000, 500), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BusiestWindow(tt.in, 100*time.Millisecond); got != tt.want {
				t.Errorf("BusiestWindow(%v, 100ms) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestStatusField(t *testing.T) {
	status := "Name:\tbench\nVmPeak:\t  10 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\nThreads:\t5\n"
	tests := []struct {
		field   string
		want    int64
		wantErr string
	}{
		{"VmHWM", 2048 * 1024, ""},
		{"VmRSS", 1024 * 1024, ""},
		{"Threads", 0, `Threads: unexpected value "5"`},
		{"VmSwap", 0, "no VmSwap field"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			got, err := statusField([]byte(status), tt.field)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("statusField(%s) error = %v, want one containing %q", tt.field, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("statusField(%s) = %d, %v; want %d", tt.field, got, err, tt.want)
			}
		})
	}
}

func TestCPUModel(t *testing.T) {
	info := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\nmodel name\t: other\n"
	if got := cpuModel([]byte(info)); got != "Intel(R) Xeon(R) Processor" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := cpuModel([]byte("processor: 0\n")); got != "" {
		t.Errorf("cpuModel without a model name = %q, want empty", got)
	}
}

// TestThisProcess checks the live readings against what this test knows
// about itself: it has used some CPU, has a resident set, and runs on at
// least one CPU. (VmHWM is not compared with VmRSS: the kernel folds
// per-thread RSS counters into the peak lazily, so it may lag slightly.)
func TestThisProcess(t *testing.T) {
	x := 0
	for i := range 5_000_000 {
		x ^= i * i
	}
	_ = x
	u, s, err := CPUTime()
	if err != nil || u+s <= 0 {
		t.Errorf("CPUTime = %v, %v, %v", u, s, err)
	}
	hwm, err := ProcStatus("VmHWM")
	if err != nil {
		t.Fatal(err)
	}
	rss, err := ProcStatus("VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	if rss <= 0 || hwm <= 0 {
		t.Errorf("VmHWM %d, VmRSS %d; want both positive", hwm, rss)
	}
	m := ReadMachine()
	if m.NProc < 1 || m.GoVersion == "" || !strings.Contains(m.String(), "nproc=") {
		t.Errorf("ReadMachine = %+v", m)
	}
	n, err := RaiseNOFILE()
	if err != nil || n == 0 {
		t.Errorf("RaiseNOFILE = %d, %v", n, err)
	}
}
