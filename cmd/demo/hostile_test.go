package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/grid"
	"github.com/tubfarm/tubfarm/internal/hostile"
)

// TestHostileServerTextNeverReachesTerminal runs the demo on a node
// directory whose one server has a nickname full of terminal escapes and
// answers with the largest Failure Foolscap lets through, also full of
// them. Nothing the demo prints, on stdout or stderr, carries a control
// character other than newline and tab.
func TestHostileServerTextNeverReachesTerminal(t *testing.T) {
	var script hostile.Banana
	script.Reply("error", 1, hostile.MaxFailure)
	furl := hostile.Server(t, script.Buf)
	dir := t.TempDir()
	if err := grid.WriteNodeDir(dir, grid.NodeDir{}); err != nil {
		t.Fatal(err)
	}
	yaml := "storage:\n  hostile-server:\n    ann:\n" +
		`      nickname: "\e[2J\e]0;owned\a\r\nConnected to 9 of 9\u009b31m"` + "\n" +
		"      anonymous-storage-FURL: " + furl + "\n"
	if err := os.WriteFile(config.ServersPath(dir), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(testCtx(t), []string{"-once", "-node-dir", dir, "-timeout", "3s"}, &stdout, &stderr, true)
	if code == 0 {
		t.Fatal("the demo reported success with a server that never connects")
	}
	for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
		for i, r := range out {
			if r == utf8.RuneError || r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f {
				t.Errorf("%s holds %U at byte %d: %q", name, r, i, out[max(0, i-40):min(len(out), i+40)])
				break
			}
		}
	}
	if !strings.Contains(stdout.String(), `\\u001b[2J`) && !strings.Contains(stdout.String(), `\\x1b[2J`) {
		t.Errorf("stdout does not show the server's escapes escaped:\n%.2000s", stdout.String())
	}
}
