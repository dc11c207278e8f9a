package layers

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tubfarm/tubfarm"

// mayUse lists, for each library package, every package of the module it
// may depend on, directly or not (go list -deps). Anything else of the
// module in its dependencies is a wrong-way import. A package not listed
// here is not checked (commands, benchmarks, test kits).
var mayUse = map[string][]string{
	"hints":             {},
	"tls":               {"internal/nodefile"},
	"internal/nodefile": {},
	"internal/termsafe": {},
	"foolscap":          {"tls", "internal/nodefile"},
	"config":            {"hints", "tls", "internal/nodefile"},
	"messages":          {"hints"},
	"actors":            {"messages", "hints", "tls", "internal/termsafe", "internal/nodefile"},
	"storage":           {"foolscap", "tls", "internal/nodefile"},
	"httpstorage":       {"storage", "foolscap", "hints", "tls", "internal/nodefile"},
	"introducer":        {"config", "foolscap", "hints", "tls", "internal/nodefile"},
	"status":            {"actors", "messages", "foolscap", "hints", "tls", "internal/termsafe", "internal/nodefile"},
}

// directOnly lists packages that may reach a package only through another:
// actors sees hints values (FURL, Policy) inside messages.ServerSpec, but
// never imports hints itself, so it cannot dial.
var directOnly = map[string][]string{
	"actors": {"hints"},
}

// rootUsers are the only packages that may import the root package: the
// programs and their internals.
var rootUsers = []string{"cmd/", "bench", "internal/cli", "internal/liveview"}

type pkg struct {
	imports, deps []string // module-relative; "" is the root package
}

// listModule runs go list on the whole module (non-test imports only).
func listModule(t *testing.T) map[string]pkg {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{join .Imports \" \"}}\t{{join .Deps \" \"}}", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	rel := func(fields string) []string {
		var r []string
		for _, p := range strings.Fields(fields) {
			if p == module {
				r = append(r, "")
			} else if s, ok := strings.CutPrefix(p, module+"/"); ok {
				r = append(r, s)
			}
		}
		return r
	}
	pkgs := make(map[string]pkg)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			t.Fatalf("go list printed %q", sc.Text())
		}
		name := rel(f[0])
		if len(name) != 1 {
			t.Fatalf("go list printed a package outside the module: %q", f[0])
		}
		pkgs[name[0]] = pkg{imports: rel(f[1]), deps: rel(f[2])}
	}
	return pkgs
}

// TestImportDirections checks the import directions of
// docs/architecture.md: the leaves (hints, tls, foolscap, config) never
// depend on messages, actors or the root package; actors never on config,
// foolscap or the storage protocols, and on hints only through messages;
// only programs import the root package.
func TestImportDirections(t *testing.T) {
	pkgs := listModule(t)
	if len(pkgs) < len(mayUse) {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	for name, allowed := range mayUse {
		p, ok := pkgs[name]
		if !ok {
			t.Errorf("package %s is in the rules but not in the module", name)
			continue
		}
		for _, d := range p.deps {
			if !slices.Contains(allowed, d) {
				t.Errorf("%s depends on %s (allowed: %v); see docs/architecture.md", name, show(d), allowed)
			}
		}
	}
	for name, indirect := range directOnly {
		for _, d := range pkgs[name].imports {
			if slices.Contains(indirect, d) {
				t.Errorf("%s imports %s itself; it may only see its values through another package", name, d)
			}
		}
	}
	for name, p := range pkgs {
		if !slices.Contains(p.imports, "") {
			continue
		}
		if !slices.ContainsFunc(rootUsers, func(u string) bool { return name == u || strings.HasPrefix(name, u) }) {
			t.Errorf("%s imports the root package; only %v may", name, rootUsers)
		}
	}
}

func show(p string) string {
	if p == "" {
		return "the root package"
	}
	return p
}
