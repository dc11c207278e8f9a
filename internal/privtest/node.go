package privtest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tubfarm/tubfarm/config"
)

// An Entry is one server as a node directory lists it: in an introducer
// cache, signed with the server's key, or in servers.yaml.
type Entry struct {
	Server *Server
	// FURL is the anonymous-storage-FURL to announce.
	FURL string
	// Connections is the servers.yaml "connections:" override of a static
	// entry; nil for none.
	Connections map[string]string
}

// NodeDir describes a node directory for WriteNodeDir.
type NodeDir struct {
	// TahoeCfg is the content of tahoe.cfg.
	TahoeCfg string
	// Introducers maps an introducer's petname to the entries of its
	// cache. The introducers themselves are .onion FURLs (port IntroducerPort)
	// where nothing listens: dialed through the proxy, never answered.
	Introducers map[string][]Entry
	// Static entries go into private/servers.yaml.
	Static []Entry
}

// AnonymousCfg returns a tahoe.cfg that hides the node's IP address as
// "tahoe create-client --hide-ip" does, with the given Tor SOCKS and I2P
// SAM addresses ("" leaves the key unset).
func AnonymousCfg(socks, sam string) string {
	var sb strings.Builder
	sb.WriteString("[node]\nnickname = anonymous\nreveal-IP-address = false\ntub.port = disabled\ntub.location = disabled\n")
	sb.WriteString("[connections]\ntcp = tor\n")
	if socks != "" {
		fmt.Fprintf(&sb, "[tor]\nsocks.port = tcp:%s\n", socks)
	}
	if sam != "" {
		fmt.Fprintf(&sb, "[i2p]\nsam.port = tcp:%s\n", sam)
	}
	return sb.String()
}

// WriteNodeDir writes a Tahoe node directory at dir: tahoe.cfg,
// private/introducers.yaml, one signed cache per introducer and
// private/servers.yaml.
func WriteNodeDir(dir string, nd NodeDir) error {
	if err := os.MkdirAll(filepath.Join(dir, "private"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(config.TahoeCfgPath(dir), []byte(nd.TahoeCfg), 0o600); err != nil {
		return err
	}
	pets := make([]string, 0, len(nd.Introducers))
	for p := range nd.Introducers {
		pets = append(pets, p)
	}
	slices.Sort(pets)
	var intro strings.Builder
	intro.WriteString("introducers:\n")
	for i, pet := range pets {
		fmt.Fprintf(&intro, "  %s:\n    furl: pb://%s@tor:%s.onion:%d/introducer\n", pet, strings.Repeat("a", 32), strings.Repeat(string(rune('a'+i)), 56), IntroducerPort)
		var entries []config.CacheEntry
		for n, e := range nd.Introducers[pet] {
			signed, err := config.Sign(e.Server.Key, map[string]any{
				"anonymous-storage-FURL": e.FURL,
				"nickname":               e.Server.Nickname,
				"my-version":             "tahoe-lafs/1.20.0",
				"service-name":           "storage",
				"seqnum":                 int64(n + 1),
				"nonce":                  "nonce",
				"version":                int64(0),
			})
			if err != nil {
				return err
			}
			a, err := signed.Verify()
			if err != nil {
				return err
			}
			entries = append(entries, config.CacheEntry{Key: e.Server.ID, Announcement: a, Signed: &signed})
		}
		if err := config.WriteCache(config.CachePath(dir, pet), entries); err != nil {
			return err
		}
	}
	if len(pets) > 0 {
		if err := os.WriteFile(config.IntroducersPath(dir), []byte(intro.String()), 0o600); err != nil {
			return err
		}
	}
	var sb strings.Builder
	if len(nd.Static) == 0 {
		sb.WriteString("storage: {}\n")
	} else {
		sb.WriteString("storage:\n")
	}
	for _, e := range nd.Static {
		fmt.Fprintf(&sb, "  %s:\n    ann:\n      nickname: %s\n      anonymous-storage-FURL: %s\n", e.Server.ID, e.Server.Nickname, e.FURL)
		if len(e.Connections) > 0 {
			sb.WriteString("    connections:\n")
			keys := make([]string, 0, len(e.Connections))
			for k := range e.Connections {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(&sb, "      %s: %s\n", k, e.Connections[k])
			}
		}
	}
	return os.WriteFile(config.ServersPath(dir), []byte(sb.String()), 0o600)
}

// IntroducerPort is the port of the introducer FURLs WriteNodeDir writes.
const IntroducerPort = 3457
