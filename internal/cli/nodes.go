package cli

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tubfarm/tubfarm/config"
	"github.com/tubfarm/tubfarm/internal/termsafe"
)

// candidate is a server SERVER may name.
type candidate struct{ id, nickname string }

// resolveServer finds the one server arg names: an exact id, else every
// server whose id starts with arg (or "v0-"+arg) or whose nickname is arg.
// No match or several matches are errors that list what was found.
func resolveServer(cands []candidate, arg string) (string, error) {
	for _, c := range cands {
		if c.id == arg {
			return c.id, nil
		}
	}
	var found []candidate
	for _, c := range cands {
		if arg != "" && (strings.HasPrefix(c.id, arg) || strings.HasPrefix(c.id, "v0-"+arg) || c.nickname == arg) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 1:
		return found[0].id, nil
	case 0:
		return "", fmt.Errorf("no server has the id, id prefix or nickname %s", termsafe.String(fmt.Sprintf("%q", arg)))
	}
	slices.SortFunc(found, func(a, b candidate) int { return strings.Compare(a.id, b.id) })
	var names []string
	for _, c := range found {
		n := c.id
		if c.nickname != "" {
			n += " (" + termsafe.Clip(c.nickname, 40) + ")"
		}
		names = append(names, n)
	}
	return "", fmt.Errorf("%s is ambiguous: it names %s; give more of the id", termsafe.String(fmt.Sprintf("%q", arg)), strings.Join(names, ", "))
}

// pinnedFields are the announcement fields pin copies into servers.yaml,
// in the order it writes them (docs/cli.md lists them and why).
var pinnedFields = []string{
	config.FieldNickname,
	config.FieldFURL,
	config.FieldPermutationSeed,
	config.FieldMyVersion,
	"grid-manager-certificates",
	fieldNURLs,
}

// entryNode builds a servers.yaml entry value, {ann: {...}}, from an
// announcement.
func entryNode(a config.Announcement) (*yaml.Node, error) {
	ann := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, k := range pinnedFields {
		v, ok := a.Field(k)
		if !ok {
			continue
		}
		var n yaml.Node
		if err := n.Encode(v); err != nil {
			return nil, fmt.Errorf("encoding %s: %w", k, err)
		}
		ann.Content = append(ann.Content, strNode(k), &n)
	}
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{strNode("ann"), ann}}, nil
}

func strNode(s string) *yaml.Node {
	var n yaml.Node
	n.Encode(s) // a string always encodes
	return &n
}

// mapValue returns the value of key in mapping m, following an alias.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			return v
		}
	}
	return nil
}

// scalarValue returns the string value of key in m, "" if absent.
func scalarValue(m *yaml.Node, key string) string {
	if v := mapValue(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// setScalar sets key in mapping m to the string s; a new key goes last.
// A comment on the old value's line is dropped with the value it described.
func setScalar(m *yaml.Node, key, s string) {
	n := strNode(s)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i].LineComment = ""
			m.Content[i+1] = n
			return
		}
	}
	m.Content = append(m.Content, strNode(key), n)
}

// deleteKey removes key from mapping m and reports whether it was there.
func deleteKey(m *yaml.Node, key string) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = slices.Delete(m.Content, i, i+2)
			return true
		}
	}
	return false
}

// deepCopy copies a node tree (aliases keep pointing at their anchors).
func deepCopy(n *yaml.Node) *yaml.Node {
	if n == nil {
		return nil
	}
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = deepCopy(k)
	}
	return &c
}
