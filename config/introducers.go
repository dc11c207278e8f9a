package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tubfarm/tubfarm/hints"
	"gopkg.in/yaml.v3"
)

// DefaultPetname is the petname of the introducer configured by the
// deprecated tahoe.cfg [client] introducer.furl.
const DefaultPetname = "default"

// An Introducer is one configured introducer.
type Introducer struct {
	// Petname names the introducer; it also names its cache file.
	Petname string
	// FURL is the parsed introducer FURL; RawFURL is it as written.
	FURL    hints.FURL
	RawFURL string
	// Path and Line say where it was defined: private/introducers.yaml,
	// or tahoe.cfg for petname "default" from [client] introducer.furl.
	Path string
	Line int
}

// IntroducersPath, ServersPath, NodePEMPath and CachePath return the
// standard locations of the node files under nodeDir.
func IntroducersPath(nodeDir string) string {
	return filepath.Join(nodeDir, "private", "introducers.yaml")
}

// ServersPath returns NODEDIR/private/servers.yaml.
func ServersPath(nodeDir string) string { return filepath.Join(nodeDir, "private", "servers.yaml") }

// NodePEMPath returns NODEDIR/private/node.pem.
func NodePEMPath(nodeDir string) string { return filepath.Join(nodeDir, "private", "node.pem") }

// TahoeCfgPath returns NODEDIR/tahoe.cfg.
func TahoeCfgPath(nodeDir string) string { return filepath.Join(nodeDir, "tahoe.cfg") }

// CheckNodeDir gives a clear error for a path that is not a node
// directory: missing, not a directory, or without a tahoe.cfg.
func CheckNodeDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("node directory %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("node directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("node directory %s is not a directory", dir)
	}
	if _, err := os.Stat(TahoeCfgPath(dir)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s is not a Tahoe node directory: %s does not exist", dir, TahoeCfgPath(dir))
		}
		return fmt.Errorf("node directory: %w", err)
	}
	return nil
}

// CachePath returns NODEDIR/private/introducer_<petname>_cache.yaml.
func CachePath(nodeDir, petname string) string {
	return filepath.Join(nodeDir, "private", "introducer_"+petname+"_cache.yaml")
}

// checkPetname rejects petnames that would not name a file inside
// private/ (Tahoe does not check; a "/" would put the cache elsewhere).
func checkPetname(p string) error {
	switch {
	case p == "":
		return classErr(ErrInvalidValue, "petname must not be empty")
	case strings.ContainsAny(p, "/\\\x00"):
		return classErr(ErrInvalidValue, "petname "+quote(p)+" must not contain '/', '\\' or NUL (it names a cache file)")
	}
	return nil
}

// LoadIntroducers reads NODEDIR/private/introducers.yaml and adds the
// deprecated tahoe.cfg introducer (petname "default") from cfg, which may
// be nil. A missing introducers.yaml means no introducers from that file.
// The result is sorted by petname.
func LoadIntroducers(nodeDir string, cfg *TahoeConfig) ([]Introducer, error) {
	path := IntroducersPath(nodeDir)
	data, err := readFile(path)
	var intros []Introducer
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, &FileError{Path: path, Err: err}
	default:
		if intros, err = ParseIntroducers(path, data); err != nil {
			return nil, err
		}
	}
	return addCfgIntroducer(intros, path, cfg)
}

func addCfgIntroducer(intros []Introducer, path string, cfg *TahoeConfig) ([]Introducer, error) {
	if cfg == nil || cfg.IntroducerFURL == "" {
		return intros, nil
	}
	for _, in := range intros {
		if in.Petname == DefaultPetname {
			return nil, &FileError{Path: path, Line: in.Line, Field: "introducers." + DefaultPetname, Err: classErr(ErrConflict,
				"'default' introducer furl cannot be specified in tahoe.cfg ("+cfg.Path+":"+itoa(cfg.IntroducerLine)+
					") and introducers.yaml; please fix impossible configuration")}
		}
	}
	f, err := hints.ParseFURL(cfg.IntroducerFURL)
	if err != nil { // ParseTahoeConfig already checked it
		return nil, &FileError{Path: cfg.Path, Line: cfg.IntroducerLine, Section: "client", Field: "introducer.furl", Err: wrapClass(ErrInvalidValue, "", err)}
	}
	intros = append(intros, Introducer{Petname: DefaultPetname, FURL: f, RawFURL: cfg.IntroducerFURL, Path: cfg.Path, Line: cfg.IntroducerLine})
	slices.SortFunc(intros, func(a, b Introducer) int { return strings.Compare(a.Petname, b.Petname) })
	return intros, nil
}

// ParseIntroducers parses the contents of an introducers.yaml:
//
//	introducers:
//	  PETNAME:
//	    furl: FURL
//
// Only "furl" is read; other keys of an entry and other top-level keys are
// ignored, as in Tahoe. An empty document is an error (Tahoe: "Can't
// read"); a document without "introducers" defines none. Petnames and
// FURLs must be strings, FURLs must parse, and petnames must be usable in
// a file name. The result is sorted by petname.
func ParseIntroducers(path string, data []byte) ([]Introducer, error) {
	y, root, err := parseYAML(path, data)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &FileError{Path: path, Err: classErr(ErrEmptyDocument, "file is empty; remove it or define introducers")}
	}
	top, err := y.mapping(root, "")
	if err != nil {
		return nil, err
	}
	var list []pair
	for _, p := range top {
		if p.key != "introducers" {
			continue
		}
		v, err := y.resolve(p.value)
		if err != nil {
			return nil, err
		}
		if isNull(v) {
			return nil, y.errAt(p.keyN, "introducers", classErr(ErrType, "must be a mapping of petname to {furl: ...}, not null"))
		}
		if list, err = y.mapping(v, "introducers"); err != nil {
			return nil, err
		}
	}
	intros := make([]Introducer, 0, len(list))
	for _, p := range list {
		field := "introducers." + p.key
		if err := checkPetname(p.key); err != nil {
			return nil, y.errAt(p.keyN, field, err)
		}
		entry, err := y.mapping(p.value, field)
		if err != nil {
			return nil, err
		}
		var furlN *yaml.Node
		for _, e := range entry {
			if e.key == "furl" {
				furlN = e.value
			}
		}
		if furlN == nil {
			return nil, y.errAt(p.keyN, field+".furl", classErr(ErrMissing, "introducer has no furl"))
		}
		raw, err := y.str(furlN, field+".furl")
		if err != nil {
			return nil, err
		}
		f, ferr := hints.ParseFURL(raw)
		if ferr != nil {
			return nil, y.errAt(furlN, field+".furl", wrapClass(ErrInvalidValue, "", ferr))
		}
		intros = append(intros, Introducer{Petname: p.key, FURL: f, RawFURL: raw, Path: path, Line: p.keyN.Line})
	}
	slices.SortFunc(intros, func(a, b Introducer) int { return strings.Compare(a.Petname, b.Petname) })
	return intros, nil
}
