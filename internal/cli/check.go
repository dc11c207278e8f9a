package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/nodefile"
	"github.com/tubfarm/tubfarm/internal/termsafe"
	tubtls "github.com/tubfarm/tubfarm/tls"
)

var checkCmd = &command{
	name: "check",
	args: "[--json]",
	summary: "Read every file of the node directory and print every error and warning as FILE:LINE: FIELD: MESSAGE,\n" +
		"including what Tahoe accepts silently. Exit status 0: no errors (warnings allowed), 1: errors, 2: usage.",
	example: "  tubfarm check -d ~/.tahoe && echo clean",
	nodeDir: true,
	setFlags: func(fs *flag.FlagSet, c *cmdContext) {
		fs.BoolVar(&c.json, "json", false, "print the findings as JSON")
	},
	run: runCheck,
}

// A finding is one problem check reports.
type finding struct {
	Path     string `json:"path"`
	Line     int    `json:"line"`
	Field    string `json:"field"`
	Severity string `json:"severity"` // "error" or "warning"
	Message  string `json:"message"`
}

func (f finding) String() string {
	var b strings.Builder
	b.WriteString(f.Path)
	if f.Line > 0 {
		fmt.Fprintf(&b, ":%d", f.Line)
	}
	b.WriteString(": ")
	if f.Field != "" {
		b.WriteString(f.Field + ": ")
	}
	if f.Severity == "warning" {
		b.WriteString("warning: ")
	}
	b.WriteString(f.Message)
	return b.String()
}

type checker struct {
	dir      string
	findings []finding
}

func (k *checker) add(sev, path string, line int, field, msg string) {
	k.findings = append(k.findings, finding{Path: path, Line: line, Field: termsafe.Clip(field, 120), Severity: sev,
		Message: termsafe.Clip(strings.TrimPrefix(msg, "hints: "), 400)})
}

// addErr adds err, a *config.FileError, *config.AnnouncementError or other
// error about path.
func (k *checker) addErr(sev, path string, err error) {
	var fe *config.FileError
	var ae *config.AnnouncementError
	switch {
	case errors.As(err, &fe):
		field := fe.Field
		if fe.Section != "" {
			field = strings.TrimSpace("[" + fe.Section + "] " + fe.Field)
		}
		k.add(sev, fe.Path, fe.Line, field, fe.Err.Error()+silently(fe.Err))
	case errors.As(err, &ae):
		k.add(sev, cmp.Or(ae.Path, path), ae.Line, "announcement of "+ae.Key+" from introducer "+ae.Introducer, ae.Err.Error())
	default:
		k.add(sev, path, 0, "", err.Error())
	}
}

// silently adds what Tahoe does with input it accepts without a word.
func silently(err error) string {
	switch {
	case errors.Is(err, hints.ErrUnknownHandler):
		return " (Tahoe accepts it silently and installs no handler: those hints are never dialled)"
	case errors.Is(err, hints.ErrUnknownHintType):
		return " (Tahoe accepts it silently and ignores it)"
	}
	return ""
}

func runCheck(_ context.Context, c *cmdContext) int {
	if fi, err := os.Stat(c.dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory", c.dir)
		}
		return c.fail("%s", termsafe.Error(err))
	}
	k := &checker{dir: c.dir}
	k.run()
	slices.SortStableFunc(k.findings, func(a, b finding) int {
		return cmp.Or(cmp.Compare(fileRank(c.dir, a.Path), fileRank(c.dir, b.Path)), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Line, b.Line))
	})
	errs, warns := 0, 0
	for _, f := range k.findings {
		if f.Severity == "error" {
			errs++
		} else {
			warns++
		}
	}
	if c.json {
		fs := k.findings
		if fs == nil {
			fs = []finding{}
		}
		writeJSON(c.stdout, struct {
			NodeDir  string    `json:"node_dir"`
			Errors   int       `json:"errors"`
			Warnings int       `json:"warnings"`
			Findings []finding `json:"findings"`
		}{c.dir, errs, warns, fs})
	} else {
		for _, f := range k.findings {
			fmt.Fprintln(c.stdout, f)
		}
		fmt.Fprintf(c.stdout, "%s: %s, %s\n", c.dir, plural(errs, "error"), plural(warns, "warning"))
	}
	if errs > 0 {
		return ExitFailure
	}
	return ExitOK
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// fileRank orders findings: tahoe.cfg, introducers.yaml, caches,
// servers.yaml, node.pem.
func fileRank(dir, path string) int {
	switch path {
	case config.TahoeCfgPath(dir):
		return 0
	case config.IntroducersPath(dir):
		return 1
	case config.ServersPath(dir):
		return 3
	case config.NodePEMPath(dir):
		return 4
	}
	return 2
}

func (k *checker) run() {
	dir := k.dir
	cfgPath := config.TahoeCfgPath(dir)
	cfg, err := config.LoadTahoeConfig(cfgPath)
	if err != nil {
		k.addErr("error", cfgPath, err)
		k.add("warning", cfgPath, 0, "", "the other files are checked with Tahoe's default settings")
		cfg = config.DefaultTahoeConfig()
	} else if _, err := os.Stat(cfgPath); err != nil {
		k.add("warning", cfgPath, 0, "", "missing: this is not a Tahoe node directory, or the node was never created (Tahoe's defaults apply)")
	}
	intros, err := config.LoadIntroducers(dir, cfg)
	if err != nil {
		k.addErr("error", config.IntroducersPath(dir), err)
	}
	var announced []config.Announced
	known := map[string]bool{}
	for _, in := range intros {
		path := config.CachePath(dir, in.Petname)
		known[path] = true
		cache, err := config.ReadCache(path)
		if err != nil {
			k.addErr("warning", path, err)
			continue
		}
		for _, d := range cache.Dropped {
			k.addErr("warning", path, d)
		}
		announced = append(announced, cache.Announced(in.Petname)...)
	}
	if stray, _ := filepath.Glob(filepath.Join(dir, "private", "introducer_*_cache.yaml")); len(stray) > 0 {
		for _, p := range stray {
			if !known[p] {
				k.add("warning", p, 0, "", "no configured introducer has this cache's petname: the file is not read")
			}
		}
	}
	srvPath := config.ServersPath(dir)
	static, entryErrs, err := config.CheckServers(srvPath, cfg)
	if err != nil {
		k.addErr("error", srvPath, err)
		static = &config.Servers{Path: srvPath}
	}
	for _, e := range entryErrs {
		k.addErr("error", srvPath, e)
	}
	for _, n := range static.Notes {
		k.addErr("warning", srvPath, n)
	}
	k.checkStorageNull(srvPath)
	k.checkNodePEM(config.NodePEMPath(dir))

	m, dropped := config.Merge(cfg, announced, static, nil)
	for _, d := range dropped {
		k.addErr("warning", "", d)
	}
	byKey := map[string][]config.Announced{}
	for _, a := range announced {
		byKey[a.Key] = append(byKey[a.Key], a)
	}
	for e := range m.All() {
		if e.Source.Static {
			k.checkStatic(e, len(intros) > 0, byKey[e.ID])
			continue
		}
		k.checkAnnounced(e, byKey[e.ID])
	}
}

// checkNodePEM reports a node.pem that does not parse (Tahoe and tubfarm
// refuse to start) or that others may read. A missing one is created at
// start, so it is no finding.
func (k *checker) checkNodePEM(path string) {
	fi, err := os.Lstat(path)
	if err != nil {
		return
	}
	data, err := nodefile.Read(path, tubtls.MaxNodePEMSize)
	if err == nil {
		_, err = tubtls.ParsePEM(data)
	}
	if err != nil {
		k.add("error", path, 0, "", strings.TrimPrefix(err.Error(), "tubtls: "))
		return
	}
	if fi.Mode().Perm()&0o077 != 0 {
		k.add("warning", path, 0, "", fmt.Sprintf("mode %04o: others may read the node's private key (chmod 600)", fi.Mode().Perm()))
	}
}

// checkStorageNull reports "storage:" with a null value, which tubfarm
// reads as no servers and on which Tahoe fails to start.
func (k *checker) checkStorageNull(path string) {
	data, err := nodefile.Read(path, config.MaxFileSize)
	if err != nil {
		return
	}
	doc, err := parseServersDoc(data)
	if err != nil || doc.storageKey == nil {
		return
	}
	if v := doc.storage; v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
		k.add("error", path, doc.storageKey.Line, "storage", "is null: Tahoe fails to start on it (it needs a mapping); write \"storage: {}\" or remove the file")
	}
}

func (k *checker) checkStatic(e config.Entry, haveIntroducers bool, anns []config.Announced) {
	field := "storage." + e.ID
	if haveIntroducers && len(anns) == 0 {
		k.add("warning", e.Source.Path, e.Source.Line, field,
			"no introducer announced this server id: an entry overrides an announcement only when its id is exactly the announced key (else Tahoe connects to both)")
	}
	if nurls, ok := e.Announcement.Field(fieldNURLs); ok {
		if l, ok := nurls.([]any); ok && len(l) > 0 && len(e.Connections) > 0 {
			k.add("warning", e.Source.Path, e.Source.Line, field+".connections",
				"ann has "+fieldNURLs+": Tahoe 1.19+ then uses HTTPS storage and ignores this connections override")
		}
	}
	k.checkHints("error", e, e.Source.Path, e.Source.Line, field+".ann."+config.FieldFURL)
}

func (k *checker) checkAnnounced(e config.Entry, anns []config.Announced) {
	var at config.Announced
	for _, a := range anns {
		if a.Introducer == e.Source.Chosen {
			at = a
		}
	}
	if d := disagreement(anns); len(d) > 0 {
		var who []string
		for _, a := range anns {
			who = append(who, a.Introducer)
		}
		k.add("warning", at.Path, at.Line, "announcement of "+e.ID,
			fmt.Sprintf("introducers %s disagree on %s; the highest seqnum (from %s) is used", strings.Join(who, ", "), strings.Join(d, ", "), e.Source.Chosen))
	}
	k.checkHints("warning", e, at.Path, at.Line, "announcement of "+e.ID+": "+config.FieldFURL)
}

// checkHints reports each hint the entry's policy cannot dial, and a server
// none of whose hints can be dialled (sev: an error in servers.yaml, which
// the operator wrote; a warning in a cache).
func (k *checker) checkHints(sev string, e config.Entry, path string, line int, field string) {
	usable := false
	for _, d := range e.Policy.DecideFURL(e.FURL) {
		if d.Usable {
			usable = true
			continue
		}
		k.add("warning", path, line, field, "hint "+d.String()+hintAdvice(d))
	}
	for _, u := range e.NURLs {
		if d := e.Policy.Decide(u.Hint.Raw); d.Usable {
			usable = true
		} else {
			k.add("warning", path, line, field, "NURL location "+d.String())
		}
	}
	for _, err := range e.NURLErrors {
		k.add("warning", path, line, fieldNURLs, strings.TrimPrefix(err.Error(), "hints: ")+" (this NURL is left out)")
	}
	if !usable {
		k.add(sev, path, line, field, "no hint can be dialled: the server is unreachable")
	}
}

func hintAdvice(d hints.Decision) string {
	if errors.Is(d.Err, hints.ErrUnknownHintType) {
		return " (no handler can dial this hint type; Tahoe skips it silently)"
	}
	return ""
}
