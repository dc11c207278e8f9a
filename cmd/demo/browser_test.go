package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tubfarm/tubfarm/status"
)

// chromium runs Debian's chromium headless on url with extra arguments and
// returns its stdout. It fails the test, never skips it, when chromium is
// missing: scripts/test.sh installs it.
func chromium(t *testing.T, ctx context.Context, url string, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed to test the status page in a real browser (scripts/test.sh installs Debian's chromium): %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\nstderr:\n%s", args, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestStatusPageInBrowser loads the status page of a running demo in
// headless chromium: the rendered DOM shows every server and its state,
// the in-place refresh works under the page's Content-Security-Policy, and
// a screenshot is taken (kept in the test's temporary directory; set
// TUBFARM_SCREENSHOT=path to keep a copy).
func TestStatusPageInBrowser(t *testing.T) {
	ctx := testCtx(t)
	p := startDemo(t, buildDemo(t), "-servers", "4", "-chaos", "0")
	url := p.waitLine(t, ctx, readyLine)[1]

	// The JSON the page is made from.
	resp, err := http.Get(url + "status?t=json")
	if err != nil {
		t.Fatal(err)
	}
	var rep status.Report
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 4 || rep.Total != 4 {
		t.Fatalf("JSON: %d of %d connected", rep.Connected, rep.Total)
	}

	// The DOM after scripts ran, with enough virtual time for the page to
	// refresh itself twice (every 2 s).
	dom := string(chromium(t, ctx, url, "--virtual-time-budget=5000", "--dump-dom"))
	if !strings.Contains(dom, `<h1 id="summary">Connected to <b>4</b> of <b>4</b> known storage servers</h1>`) {
		t.Errorf("rendered page lacks the summary header:\n%s", dom)
	}
	rows := regexp.MustCompile(`<tr class="s-(\w+)" data-id="([^"]+)" data-state="(\w+)">`).FindAllStringSubmatch(dom, -1)
	if len(rows) != 4 {
		t.Fatalf("rendered page has %d server rows, want 4:\n%s", len(rows), dom)
	}
	for _, s := range rep.Servers {
		row := fmt.Sprintf(`<tr class="s-connected" data-id="%s" data-state="connected">`, s.ID)
		if !strings.Contains(dom, row) {
			t.Errorf("rendered page lacks the connected row of %s", s.Nickname)
		}
		if !strings.Contains(dom, `<div class="nick">`+s.Nickname+`</div>`) {
			t.Errorf("rendered page lacks nickname %s", s.Nickname)
		}
		if !strings.Contains(dom, s.Summary) {
			t.Errorf("rendered page lacks %s's summary %q", s.Nickname, s.Summary)
		}
	}
	if m := regexp.MustCompile(`<main id="status" data-refresh="2000" data-refreshed="(\d+)">`).FindStringSubmatch(dom); m == nil {
		t.Errorf("the page did not refresh itself in place (blocked by its CSP, or a script error):\n%s", dom)
	}
	if !regexp.MustCompile(`<div id="stale" hidden="">`).MatchString(dom) {
		t.Error("the page shows its 'cannot reach the node' banner")
	}

	// A screenshot, checked to be a page-sized PNG with something on it.
	shot := filepath.Join(t.TempDir(), "status.png")
	chromium(t, ctx, url, "--screenshot="+shot, "--window-size=1280,900", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 900 {
		t.Errorf("screenshot is %v, want 1280×900", b)
	}
	colours := map[uint32]bool{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 7 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if len(colours) < 20 {
		t.Errorf("screenshot has %d colours: the page did not render", len(colours))
	}
	if keep := os.Getenv("TUBFARM_SCREENSHOT"); keep != "" {
		data, err := os.ReadFile(shot)
		if err == nil {
			err = os.WriteFile(keep, data, 0o644)
		}
		if err != nil {
			t.Error(err)
		}
	}

	if code := p.stop(t, ctx, syscall.SIGINT); code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0\nstderr:\n%s", code, p.stderr.String())
	}
}
