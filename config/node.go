package config

import (
	tubtls "github.com/tubfarm/tubfarm/tls"
)

// A Node is everything read from a Tahoe-LAFS node directory. It is a
// value: loading again produces a new Node and never changes an old one,
// so a caller that gets an error from a reload simply keeps the Node it
// has.
type Node struct {
	// Dir is the node directory.
	Dir string
	// Config is tahoe.cfg.
	Config *TahoeConfig
	// Introducers are the configured introducers, sorted by petname.
	Introducers []Introducer
	// Caches maps each introducer petname to its cache file's content
	// (empty when the file is missing or unusable).
	Caches map[string]*Cache
	// Servers is private/servers.yaml.
	Servers *Servers
	// Map is the merged server map: cached announcements of all
	// introducers, overridden by Servers.
	Map *ServerMap
	// Warnings are non-fatal problems, in this order: unusable cache
	// files and dropped cache entries (*FileError), servers.yaml notes
	// (*FileError), announcements Merge skipped (*AnnouncementError).
	// Caches are machine-written and regenerable, so a broken one is a
	// warning; a broken tahoe.cfg, introducers.yaml or servers.yaml is an
	// error.
	Warnings []error
	// Identity is the node's persistent identity (private/node.pem). Only
	// Open sets it; Load does not touch node.pem.
	Identity *tubtls.Identity
}

// Load reads the node directory without modifying it: tahoe.cfg,
// private/introducers.yaml, each introducer's cache, and
// private/servers.yaml, then merges them into Node.Map (see [Merge]).
// Missing files are Tahoe's defaults (no introducers, no static servers,
// empty caches). Any error in tahoe.cfg, introducers.yaml or servers.yaml
// is returned as a *FileError and no Node is returned.
func Load(nodeDir string) (*Node, error) {
	cfg, err := LoadTahoeConfig(TahoeCfgPath(nodeDir))
	if err != nil {
		return nil, err
	}
	intros, err := LoadIntroducers(nodeDir, cfg)
	if err != nil {
		return nil, err
	}
	servers, err := LoadServers(ServersPath(nodeDir), cfg)
	if err != nil {
		return nil, err
	}
	n := &Node{Dir: nodeDir, Config: cfg, Introducers: intros, Servers: servers, Caches: map[string]*Cache{}}
	for _, in := range intros {
		path := CachePath(nodeDir, in.Petname)
		c, err := ReadCache(path)
		if err != nil {
			n.Warnings = append(n.Warnings, err)
			c = &Cache{Path: path}
		}
		n.Warnings = append(n.Warnings, c.Dropped...)
		n.Caches[in.Petname] = c
	}
	n.Warnings = append(n.Warnings, servers.Notes...)
	n.remerge(nil)
	return n, nil
}

// Open is Load followed by [LoadIdentity], which creates private/node.pem
// if it does not exist. It first removes the temporary files a cache write
// killed half-way left in private/ (see [WriteCache]): Open is where a
// process starts using the directory, so no write of its own is under way.
func Open(nodeDir string) (*Node, error) {
	removeStaleTemps(nodeDir)
	n, err := Load(nodeDir)
	if err != nil {
		return nil, err
	}
	if n.Identity, err = LoadIdentity(nodeDir); err != nil {
		return nil, err
	}
	return n, nil
}

// LoadIdentity loads the node's persistent Foolscap identity from
// NODEDIR/private/node.pem, creating it (ECDSA P-256, mode 0600) if it
// does not exist; see tubtls.LoadOrCreateNodePEM.
func LoadIdentity(nodeDir string) (*tubtls.Identity, error) {
	return tubtls.LoadOrCreateNodePEM(NodePEMPath(nodeDir))
}

// ReloadServers re-reads private/servers.yaml and returns a new Node with
// the new static servers and a re-merged Map (ties resolved in favour of
// n.Map, see [Merge]). On error n is unchanged and still valid.
func (n *Node) ReloadServers() (*Node, error) {
	servers, err := LoadServers(ServersPath(n.Dir), n.Config)
	if err != nil {
		return nil, err
	}
	return n.WithServers(servers), nil
}

// WithServers returns a new Node with servers (as read by [LoadServers]
// with n.Config) as its static servers and a re-merged Map (ties resolved in
// favour of n.Map). It reads no file, so a caller may read servers.yaml
// without holding whatever lock guards n.
func (n *Node) WithServers(servers *Servers) *Node {
	c := *n
	c.Servers = servers
	c.Warnings = nil
	for _, in := range n.Introducers {
		c.Warnings = append(c.Warnings, n.Caches[in.Petname].Dropped...)
	}
	c.Warnings = append(c.Warnings, servers.Notes...)
	c.remerge(n.Map)
	return &c
}

// Announced returns the cached announcements of every introducer, in
// petname order.
func (n *Node) Announced() []Announced {
	var all []Announced
	for _, in := range n.Introducers {
		all = append(all, n.Caches[in.Petname].Announced(in.Petname)...)
	}
	return all
}

func (n *Node) remerge(prev *ServerMap) {
	m, dropped := Merge(n.Config, n.Announced(), n.Servers, prev)
	n.Map = m
	n.Warnings = append(n.Warnings, dropped...)
}

// WithCache writes entries as introducer petname's cache file (atomically,
// see [WriteCache]) and returns a new Node whose cache and Map reflect them
// (ties resolved in favour of n.Map). On error nothing is written that
// replaces the old file, and n is unchanged and still valid.
func (n *Node) WithCache(petname string, entries []CacheEntry) (*Node, error) {
	if err := checkPetname(petname); err != nil {
		return nil, err
	}
	path := CachePath(n.Dir, petname)
	if err := WriteCache(path, entries); err != nil {
		return nil, err
	}
	c := *n
	c.Caches = make(map[string]*Cache, len(n.Caches))
	for k, v := range n.Caches {
		c.Caches[k] = v
	}
	c.Caches[petname] = &Cache{Path: path, Entries: entries}
	c.Warnings = nil
	for _, in := range n.Introducers {
		c.Warnings = append(c.Warnings, c.Caches[in.Petname].Dropped...)
	}
	c.Warnings = append(c.Warnings, n.Servers.Notes...)
	c.remerge(n.Map)
	return &c, nil
}

// WithEntries returns a new Node in which the in-memory cache of each
// introducer petname in entries holds those entries, and whose Map is
// re-merged (ties resolved in favour of n.Map). Nothing is written: the
// caller writes the cache files when it chooses (see [WriteCache]). n is
// unchanged.
func (n *Node) WithEntries(entries map[string][]CacheEntry) *Node {
	c := *n
	c.Caches = make(map[string]*Cache, len(n.Caches))
	for k, v := range n.Caches {
		c.Caches[k] = v
	}
	for pet, es := range entries {
		c.Caches[pet] = &Cache{Path: CachePath(n.Dir, pet), Entries: es}
	}
	c.Warnings = nil
	for _, in := range n.Introducers {
		if cc := c.Caches[in.Petname]; cc != nil {
			c.Warnings = append(c.Warnings, cc.Dropped...)
		}
	}
	if n.Servers != nil {
		c.Warnings = append(c.Warnings, n.Servers.Notes...)
	}
	c.remerge(n.Map)
	return &c
}
