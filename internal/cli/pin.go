package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/hints"
	"github.com/tubfarm/tubfarm/internal/nodefile"
	"github.com/tubfarm/tubfarm/internal/termsafe"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type pinOpts struct {
	hints       listFlag
	connections listFlag
	nickname    string
	dryRun      bool
}

var pinCmd = &command{
	name: "pin",
	args: "SERVER [--hint HINT]... [--connections TYPE=HANDLER]... [--nickname NAME]",
	summary: "Copy the newest cached announcement of SERVER into private/servers.yaml, or edit its entry there.\n" +
		"SERVER is a server id, a unique prefix of one (with or without \"v0-\"), or a unique nickname.\n" +
		"Other entries keep their bytes and comments; the result must load, or nothing is written.",
	example: "  # reach the LAN server \"nas\" directly while everything else goes through Tor:\n" +
		"  tubfarm pin -d ~/.tahoe nas --hint tcp:192.168.1.20:3457 --connections tcp=tcp",
	nodeDir: true,
	minArgs: 1,
	maxArgs: 1,
	setFlags: func(fs *flag.FlagSet, c *cmdContext) {
		o := &pinOpts{}
		c.opts = o
		fs.Var(&o.hints, "hint", "replace the FURL's connection hints with `HINT` (repeat for several, in order); TubID and swissnum are kept")
		fs.Var(&o.connections, "connections", "per-server handler override `TYPE=HANDLER` (tcp, tor or i2p = tcp, tor, i2p or disabled); repeatable")
		fs.StringVar(&o.nickname, "nickname", "", "set the entry's nickname to `NAME`")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print what would change, write nothing")
		fs.BoolVar(&c.json, "json", false, "print the result as JSON")
	},
	run: runPin,
}

var unpinCmd = &command{
	name:    "unpin",
	args:    "SERVER",
	summary: "Remove SERVER's entry (and the comment right above it) from private/servers.yaml; its announcements apply again.",
	example: "  tubfarm unpin -d ~/.tahoe nas",
	nodeDir: true,
	minArgs: 1,
	maxArgs: 1,
	setFlags: func(fs *flag.FlagSet, c *cmdContext) {
		o := &pinOpts{}
		c.opts = o
		fs.BoolVar(&o.dryRun, "dry-run", false, "print what would change, write nothing")
		fs.BoolVar(&c.json, "json", false, "print the result as JSON")
	},
	run: runUnpin,
}

// editResult is what pin and unpin report.
type editResult struct {
	Action   string   `json:"action"` // added, changed, removed, unchanged
	ID       string   `json:"id"`
	Nickname string   `json:"nickname"`
	Path     string   `json:"path"`
	Line     int      `json:"line"` // first line of the entry; 0 when removed
	From     string   `json:"from"` // where a new entry's announcement came from
	Changes  []string `json:"changes"`
	Warnings []string `json:"warnings"`
	Written  bool     `json:"written"`
}

// fieldConnections is the servers.yaml key of the per-server override.
const fieldConnections = "connections"

func parseConnectionsFlags(list []string) (map[string]string, error) {
	conns := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usagef("--connections %q: want TYPE=HANDLER, e.g. tcp=tcp", kv)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, err := (hints.Policy{}).WithOverride(map[string]string{k: v}); err != nil {
			return nil, usagef("--connections %q: %s", kv, strings.TrimPrefix(err.Error(), "hints: "))
		}
		conns[k] = strings.ToLower(v)
	}
	return conns, nil
}

func checkHintFlags(list []string) error {
	for _, h := range list {
		if _, err := hints.ParseHint(h); err != nil {
			return usagef("--hint %q: %s", h, strings.TrimPrefix(err.Error(), "hints: "))
		}
		if strings.ContainsAny(h, ",/@") {
			return usagef("--hint %q: a hint cannot contain ',', '/' or '@'", h)
		}
	}
	return nil
}

// withLock runs f holding the servers.yaml lock of dir, creating
// NODEDIR/private (mode 0700, as Tahoe does) if it is missing.
func withLock(dir string, f func() int) (code int, err error) {
	if err := config.CheckNodeDir(dir); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Dir(config.ServersPath(dir)), 0o700); err != nil {
		return 0, err
	}
	unlock, err := lockFile(config.ServersPath(dir) + ".lock")
	if err != nil {
		return 0, fmt.Errorf("locking %s.lock: %w", config.ServersPath(dir), err)
	}
	defer unlock()
	removeStaleTemps(dir)
	return f(), nil
}

// removeStaleTemps removes the temporary files a pin or unpin killed
// between writing and renaming left behind (they hold swissnums). Only a
// holder of the lock writes them, so under the lock none is in use.
func removeStaleTemps(dir string) {
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(config.ServersPath(dir)), ".servers.yaml.tmp-*"))
	for _, t := range tmps {
		if fi, err := os.Lstat(t); err == nil && fi.Mode().IsRegular() {
			os.Remove(t)
		}
	}
}

func runPin(_ context.Context, c *cmdContext) int {
	o := c.opts.(*pinOpts)
	conns, err := parseConnectionsFlags(o.connections)
	if err == nil {
		err = checkHintFlags(o.hints)
	}
	if err != nil {
		fmt.Fprintf(c.stderr, "tubfarm pin: %v\n", err)
		return ExitUsage
	}
	nicknameSet := c.given["nickname"]
	code, err := withLock(c.dir, func() int {
		return pinLocked(c, o, conns, nicknameSet)
	})
	if err != nil {
		return c.fail("%s", termsafe.Error(err))
	}
	return code
}

// readServersDoc loads the node and servers.yaml as it is now (under the
// lock).
func readServersDoc(c *cmdContext) (*config.Node, []byte, fs.FileMode, *serversDoc, error) {
	n, err := loadNode(c.dir)
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("the node directory does not load, so pin will not edit it: %w", err)
	}
	path := config.ServersPath(c.dir)
	data, err := nodefile.Read(path, config.MaxFileSize)
	perm := fs.FileMode(0o600)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data = nil
	case err != nil:
		return nil, nil, 0, nil, err
	default:
		if fi, err := os.Stat(path); err == nil {
			perm = fi.Mode().Perm()
		}
	}
	doc, err := parseServersDoc(data)
	if err != nil {
		return nil, nil, 0, nil, fmt.Errorf("%s: %w", path, err)
	}
	return n, data, perm, doc, nil
}

// pinLocked is pin once the lock is held: resolve SERVER, build or edit its
// entry, validate the result, write it and report.
func pinLocked(c *cmdContext, o *pinOpts, conns map[string]string, nicknameSet bool) int {
	n, data, perm, doc, err := readServersDoc(c)
	if err != nil {
		return c.fail("%s", termsafe.Error(err))
	}
	path := config.ServersPath(c.dir)
	var cands []candidate
	for e := range n.Map.All() {
		cands = append(cands, candidate{e.ID, e.Nickname})
	}
	id, err := resolveServer(cands, c.args[0])
	if err != nil {
		return c.fail("%s", err)
	}
	res := editResult{ID: id, Path: path, Changes: []string{}, Warnings: []string{}}
	var value *yaml.Node
	if e, ok := doc.find(id); ok {
		value = deepCopy(e.value)
		res.Action = "changed"
	} else {
		announced, _ := config.Merge(n.Config, n.Announced(), nil, nil)
		e, ok := announced.Get(id)
		if !ok {
			return c.fail("%s is in neither servers.yaml nor an introducer's cache", termsafe.String(id))
		}
		if value, err = entryNode(e.Announcement); err != nil {
			return c.fail("%v", err)
		}
		res.Action = "added"
		res.From = "introducer " + e.Source.Chosen
		if e.Announcement.HasSeqnum {
			res.From += fmt.Sprintf(" (seqnum %d)", e.Announcement.Seqnum)
		}
		res.Changes = append(res.Changes, "copied the announcement from "+res.From)
	}
	ann := mapValue(value, "ann")
	if ann == nil || ann.Kind != yaml.MappingNode {
		return c.fail("the entry of %s has no ann mapping to edit", termsafe.String(id))
	}
	if len(o.hints) > 0 {
		old := scalarValue(ann, config.FieldFURL)
		f, err := hints.ParseFURL(old)
		if err != nil {
			return c.fail("the entry's FURL does not parse: %s", termsafe.Error(err))
		}
		before := strings.Join(f.Hints, ",")
		f.Hints = slices.Clone(o.hints)
		setScalar(ann, config.FieldFURL, f.String())
		res.Changes = append(res.Changes, fmt.Sprintf("hints: %s -> %s (TubID and swissnum kept)", termsafe.Clip(orDash(before), 200), strings.Join(o.hints, ",")))
	}
	if nicknameSet {
		before := scalarValue(ann, config.FieldNickname)
		setScalar(ann, config.FieldNickname, o.nickname)
		res.Changes = append(res.Changes, fmt.Sprintf("nickname: %s -> %s", termsafe.Clip(orDash(before), 40), termsafe.Clip(o.nickname, 40)))
	}
	if (len(o.hints) > 0 || len(conns) > 0) && deleteKey(ann, fieldNURLs) {
		res.Changes = append(res.Changes, "removed "+fieldNURLs+": with them Tahoe 1.19+ uses HTTPS storage and ignores the FURL's hints and the connections override")
	}
	if len(conns) > 0 {
		cn := mapValue(value, fieldConnections)
		if cn == nil || cn.Kind != yaml.MappingNode {
			cn = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			deleteKey(value, fieldConnections)
			value.Content = append(value.Content, strNode(fieldConnections), cn)
		}
		for _, k := range slices.Sorted(maps.Keys(conns)) {
			before := scalarValue(cn, k)
			if before == conns[k] {
				continue
			}
			setScalar(cn, k, conns[k])
			if before == "" {
				before = "node default " + string(nodeHandler(n.Config, k))
			}
			res.Changes = append(res.Changes, fmt.Sprintf("connections: %s: %s -> %s", k, termsafe.Clip(before, 40), conns[k]))
		}
	}
	out, line, err := doc.set(id, value)
	if err != nil {
		return c.fail("%v", err)
	}
	res.Line = line
	if string(out) == string(data) {
		res.Action = "unchanged"
		res.Changes = []string{}
		return c.report(res)
	}
	srv, err := validateEdit(path, data, out, n.Config, id, true)
	if err != nil {
		return c.fail("refusing to write %s: %s", path, termsafe.Error(err))
	}
	res.Nickname = srv.Announcement.Nickname
	usable := false
	var unusable []string
	for _, d := range srv.Policy.DecideFURL(srv.FURL) {
		if d.Usable {
			usable = true
			if d.RevealsIP && !n.Config.RevealIP {
				res.Warnings = append(res.Warnings, revealWarning(srv, d))
			}
			continue
		}
		unusable = append(unusable, termsafe.Clip(d.String(), 200))
	}
	if !usable {
		hint := ""
		if srv.Policy.Handlers[hints.KindTCP] != hints.HandlerTCP {
			hint = " (add --connections tcp=tcp to dial tcp: hints directly)"
		}
		return c.fail("refusing to write %s: no hint of %s would be usable: %s%s", path, termsafe.String(id), strings.Join(unusable, "; "), hint)
	}
	for _, u := range unusable {
		res.Warnings = append(res.Warnings, "hint not used: "+u)
	}
	if !o.dryRun {
		if err := config.WriteFileAtomic(path, out, perm); err != nil {
			return c.fail("%v", err)
		}
		res.Written = true
	}
	return c.report(res)
}

// revealWarning says, in the words of Tahoe's documentation, that this
// entry reveals the node's IP address.
func revealWarning(srv config.StaticServer, d hints.Decision) string {
	return fmt.Sprintf("tahoe.cfg has [node] reveal-IP-address = false, but this entry's connections override makes "+
		"%s a direct TCP connection: it reveals the node's IP address to this server and to the network. "+
		"Tahoe allows such a \"Tor-mostly client\" (the override is not checked against reveal-IP-address); "+
		"tubfarm marks the server reveals_ip.", termsafe.Clip(d.Raw, 80))
}

// nodeHandler is tahoe.cfg's handler for a hint type.
func nodeHandler(cfg *config.TahoeConfig, kind string) hints.Handler {
	h, ok := cfg.Policy.Handlers[hints.Kind(kind)]
	if !ok {
		return "none"
	}
	return h
}

func runUnpin(_ context.Context, c *cmdContext) int {
	o := c.opts.(*pinOpts)
	code, err := withLock(c.dir, func() int {
		n, data, perm, doc, err := readServersDoc(c)
		if err != nil {
			return c.fail("%s", termsafe.Error(err))
		}
		path := config.ServersPath(c.dir)
		var cands []candidate
		for _, e := range doc.entries {
			nick := ""
			if s, ok := n.Map.Get(e.id); ok {
				nick = s.Nickname
			}
			cands = append(cands, candidate{e.id, nick})
		}
		id, err := resolveServer(cands, c.args[0])
		if err != nil {
			return c.fail("%s in %s", err, path)
		}
		out, err := doc.remove(id)
		if err != nil {
			return c.fail("%v", err)
		}
		if _, err := validateEdit(path, data, out, n.Config, id, false); err != nil {
			return c.fail("refusing to write %s: %s", path, termsafe.Error(err))
		}
		res := editResult{Action: "removed", ID: id, Path: path, Changes: []string{"removed the entry"}, Warnings: []string{}}
		if e, ok := n.Map.Get(id); ok {
			res.Nickname = e.Nickname
		}
		announced, _ := config.Merge(n.Config, n.Announced(), nil, nil)
		if e, ok := announced.Get(id); ok {
			res.Changes = append(res.Changes, "the server is now known from introducer "+e.Source.Chosen+"'s announcement")
		} else {
			res.Warnings = append(res.Warnings, "no introducer's cache announces this server: the node will not know it any more")
		}
		if !o.dryRun {
			if err := config.WriteFileAtomic(path, out, perm); err != nil {
				return c.fail("%v", err)
			}
			res.Written = true
		}
		return c.report(res)
	})
	if err != nil {
		return c.fail("%s", termsafe.Error(err))
	}
	return code
}

// validateEdit checks that the edited file loads and that every entry
// other than id means what it meant before. For a pin (present), it
// returns id's new entry.
func validateEdit(path string, before, after []byte, cfg *config.TahoeConfig, id string, present bool) (config.StaticServer, error) {
	ns, err := config.ParseServers(path, after, cfg)
	if err != nil {
		return config.StaticServer{}, fmt.Errorf("the result would not load: %w", err)
	}
	old := &config.Servers{}
	if before != nil {
		if old, err = config.ParseServers(path, before, cfg); err != nil {
			return config.StaticServer{}, fmt.Errorf("servers.yaml does not load now: %w", err)
		}
	}
	oldBy := map[string]config.StaticServer{}
	for _, s := range old.Servers {
		oldBy[s.ID] = s
	}
	var target config.StaticServer
	found := false
	for _, s := range ns.Servers {
		if s.ID == id {
			target, found = s, true
			continue
		}
		o, ok := oldBy[s.ID]
		if !ok || !o.Announcement.Equal(s.Announcement) || !maps.Equal(o.Connections, s.Connections) {
			return config.StaticServer{}, fmt.Errorf("the edit would change entry %s too", s.ID)
		}
		delete(oldBy, s.ID)
	}
	delete(oldBy, id)
	for other := range oldBy {
		return config.StaticServer{}, fmt.Errorf("the edit would lose entry %s", other)
	}
	if found != present {
		return config.StaticServer{}, fmt.Errorf("the edit did not take effect on %s", id)
	}
	return target, nil
}

func (c *cmdContext) report(res editResult) int {
	if c.json {
		if err := writeJSON(c.stdout, res); err != nil {
			return c.fail("%v", err)
		}
		return ExitOK
	}
	who := termsafe.Clip(res.ID, 64)
	if res.Nickname != "" {
		who += " (" + termsafe.Clip(res.Nickname, 40) + ")"
	}
	verb := map[string]string{"added": "pinned", "changed": "updated", "removed": "unpinned", "unchanged": "unchanged:"}[res.Action]
	if !res.Written && res.Action != "unchanged" {
		verb = "would have " + verb + " (--dry-run)"
	}
	where := res.Path
	if res.Line > 0 {
		where = fmt.Sprintf("%s:%d", res.Path, res.Line)
	}
	fmt.Fprintf(c.stdout, "%s %s in %s\n", verb, who, where)
	for _, ch := range res.Changes {
		fmt.Fprintf(c.stdout, "  %s\n", ch)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(c.stderr, "warning: %s\n", w)
	}
	if res.Written {
		fmt.Fprintf(c.stdout, "Tahoe reads servers.yaml when it starts: restart the node. A running tubfarm broker reloads it by itself.\n")
	}
	return ExitOK
}
