package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// yamlFile walks a YAML document as yaml.v3 nodes, so every error can name
// the line it comes from. It converts values to the normalized model of
// [Announcement] and bounds the work done on aliases.
type yamlFile struct {
	path   string
	budget int // node visits left; aliases are expanded against it
}

// yamlLineRE finds the line number in yaml.v3 error messages.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+)`)

// parseYAML parses data as a single YAML document and returns its root
// node, or nil when the file holds no document. A second document is an
// error, as in PyYAML's safe_load.
func parseYAML(path string, data []byte) (f *yamlFile, root *yaml.Node, err error) {
	f = &yamlFile{path: path, budget: 8*len(data) + 1024}
	defer func() {
		// yaml.v3 is not known to panic on any input since v3.0.0, but a
		// configuration loader must not take the process down if it does.
		if r := recover(); r != nil {
			f, root, err = nil, nil, &FileError{Path: path, Err: classErr(ErrSyntax, fmt.Sprint("YAML parser failed: ", r))}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil, nil
		}
		return nil, nil, f.syntaxErr(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, f.syntaxErr(err)
		}
		return nil, nil, &FileError{Path: path, Line: extra.Line, Err: classErr(ErrSyntax,
			"expected a single YAML document, found another one")}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return f, nil, nil
	}
	root = doc.Content[0]
	if isNull(root) {
		return f, nil, nil
	}
	return f, root, nil
}

func (f *yamlFile) syntaxErr(err error) error {
	line, msg := 0, err.Error()
	if m := yamlLineRE.FindStringSubmatchIndex(msg); m != nil {
		line, _ = strconv.Atoi(msg[m[2]:m[3]])
		msg = msg[m[1]:]
	}
	return &FileError{Path: f.path, Line: line, Err: &classError{class: ErrSyntax, msg: "YAML" + msg, cause: err}}
}

// errAt returns a *FileError for node n.
func (f *yamlFile) errAt(n *yaml.Node, field string, err error) *FileError {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &FileError{Path: f.path, Line: line, Field: field, Err: err}
}

// resolve follows aliases.
func (f *yamlFile) resolve(n *yaml.Node) (*yaml.Node, error) {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 || n.Alias == nil {
			return nil, f.errAt(n, "", classErr(ErrSyntax, "unresolvable alias"))
		}
		n = n.Alias
	}
	return n, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kindName names a node's type for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a " + n.ShortTag() + " value"
	}
	return "an unknown node"
}

// pair is one key/value of a mapping.
type pair struct {
	key   string
	keyN  *yaml.Node
	value *yaml.Node
}

// mapping returns the pairs of mapping node n (which names field) in
// document order. Keys must be strings and unique; YAML merge keys ("<<")
// are not supported.
func (f *yamlFile) mapping(n *yaml.Node, field string) ([]pair, error) {
	n, err := f.resolve(n)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, f.errAt(n, field, classErr(ErrType, "must be a mapping, not "+kindName(n)))
	}
	pairs := make([]pair, 0, len(n.Content)/2)
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if f.budget--; f.budget < 0 {
			return nil, f.errAt(n, field, classErr(ErrSyntax, "document too complex (alias expansion limit)"))
		}
		kn, err := f.resolve(n.Content[i])
		if err != nil {
			return nil, err
		}
		if kn.Kind != yaml.ScalarNode || kn.ShortTag() != "!!str" {
			if kn.ShortTag() == "!!merge" {
				return nil, f.errAt(kn, field, classErr(ErrSyntax, "YAML merge keys (<<) are not supported"))
			}
			return nil, f.errAt(kn, field, classErr(ErrType, "keys must be strings, not "+kindName(kn)))
		}
		if prev, dup := seen[kn.Value]; dup {
			return nil, f.errAt(kn, join(field, kn.Value), classErr(ErrDuplicate, "key already defined at line "+itoa(prev)))
		}
		seen[kn.Value] = kn.Line
		pairs = append(pairs, pair{key: kn.Value, keyN: kn, value: n.Content[i+1]})
	}
	return pairs, nil
}

// str returns the string value of scalar node n.
func (f *yamlFile) str(n *yaml.Node, field string) (string, error) {
	n, err := f.resolve(n)
	if err != nil {
		return "", err
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return "", f.errAt(n, field, classErr(ErrType, "must be a string, not "+kindName(n)))
	}
	return n.Value, nil
}

// value converts n to the normalized model: string, int64, float64, bool,
// nil, []any, map[string]any.
func (f *yamlFile) value(n *yaml.Node, field string, depth int) (any, error) {
	if f.budget--; f.budget < 0 {
		return nil, f.errAt(n, field, classErr(ErrSyntax, "document too complex (alias expansion limit)"))
	}
	if depth > maxNesting {
		return nil, f.errAt(n, field, classErr(ErrInvalidValue, "nested more than "+itoa(maxNesting)+" levels deep"))
	}
	n, err := f.resolve(n)
	if err != nil {
		return nil, err
	}
	switch n.Kind {
	case yaml.MappingNode:
		pairs, err := f.mapping(n, field)
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, len(pairs))
		for _, p := range pairs {
			v, err := f.value(p.value, join(field, p.key), depth+1)
			if err != nil {
				return nil, err
			}
			m[p.key] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := f.value(c, field+"["+itoa(i)+"]", depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		return f.scalar(n, field)
	}
	return nil, f.errAt(n, field, classErr(ErrSyntax, "unexpected YAML node"))
}

func (f *yamlFile) scalar(n *yaml.Node, field string) (any, error) {
	bad := func(err error) (any, error) { return nil, f.errAt(n, field, err) }
	switch n.ShortTag() {
	case "!!str", "!!timestamp":
		v, err := normalize(n.Value, 0)
		if err != nil {
			return bad(err)
		}
		return v, nil
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return bad(wrapClass(ErrInvalidValue, "", err))
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return bad(classErr(ErrInvalidValue, "integer out of range: "+quote(n.Value)))
		}
		return i, nil
	case "!!float":
		var x float64
		if err := n.Decode(&x); err != nil {
			return bad(wrapClass(ErrInvalidValue, "", err))
		}
		v, err := normFloat(x)
		if err != nil {
			return bad(err)
		}
		return v, nil
	}
	return bad(classErr(ErrType, "unsupported YAML tag "+n.ShortTag()))
}

// join appends key to a dotted field path.
func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}
