package cli

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// serversDoc is a servers.yaml held both as lines and as a yaml.v3 node
// tree. Edits splice lines: an entry that is added, changed or removed is
// the only text that changes, and every other byte (other entries, their
// comments, blank lines, the order) stays as it was.
//
// It handles the block style Tahoe's documentation shows. A "storage"
// mapping written in flow style ("storage: {a: ...}") with entries in it is
// refused rather than rewritten.
type serversDoc struct {
	lines      []string // the file, each line with its line ending
	nl         string   // line ending for new lines: the file's first one, else "\n"
	root       *yaml.Node
	storageKey *yaml.Node // nil if there is no "storage" key
	storage    *yaml.Node // its value
	storageEnd int        // the line after the storage mapping's last line
	entries    []docEntry
	rootIndent int // column (0-based) of top-level keys
	indent     int // column (0-based) of entry keys
	step       int // indentation step inside an entry
}

// docEntry is one entry of the storage mapping.
type docEntry struct {
	id         string
	key, value *yaml.Node
	start, end int // lines [start, end) hold the key and its value
	head       int // first line of the comment block right above the key
}

func parseServersDoc(data []byte) (*serversDoc, error) {
	d := &serversDoc{nl: "\n", step: 2}
	for rest := data; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			d.lines = append(d.lines, string(rest))
			break
		}
		d.lines = append(d.lines, string(rest[:i+1]))
		rest = rest[i+1:]
	}
	if len(d.lines) > 0 && strings.HasSuffix(d.lines[0], "\r\n") {
		d.nl = "\r\n"
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		d.root = doc.Content[0]
	}
	if d.root != nil && d.root.Kind == yaml.ScalarNode && d.root.ShortTag() == "!!null" {
		d.root = nil
	}
	if d.root == nil {
		d.indent = 2
		return d, nil
	}
	if d.root.Kind != yaml.MappingNode {
		return nil, errors.New("the document is not a mapping")
	}
	if d.root.Style&yaml.FlowStyle != 0 {
		return nil, errors.New("the document is written in flow style ({...}); pin edits block style only")
	}
	storageEnd := len(d.lines)
	for i := 0; i+1 < len(d.root.Content); i += 2 {
		k := d.root.Content[i]
		if !d.atLineStart(k) {
			return nil, errPlainBlock
		}
		if d.storageKey != nil && storageEnd == len(d.lines) {
			storageEnd = k.Line - 1
		}
		if k.Value == "storage" && d.storageKey == nil {
			d.storageKey, d.storage = k, d.root.Content[i+1]
		}
	}
	if len(d.root.Content) > 0 {
		d.rootIndent = d.root.Content[0].Column - 1
	}
	d.storageEnd = storageEnd
	d.indent = d.rootIndent + 2
	if d.storageKey != nil {
		d.indent = d.storageKey.Column - 1 + 2
	}
	if d.storage == nil || d.storage.Kind != yaml.MappingNode {
		return d, nil
	}
	if d.storage.Style&yaml.FlowStyle != 0 {
		if len(d.storage.Content) > 0 {
			return nil, errors.New("storage is written in flow style ({...}); pin edits block style only: rewrite it as a block mapping first")
		}
		return d, nil
	}
	for i := 0; i+1 < len(d.storage.Content); i += 2 {
		k, v := d.storage.Content[i], d.storage.Content[i+1]
		if !d.atLineStart(k) {
			return nil, errPlainBlock
		}
		d.entries = append(d.entries, docEntry{id: k.Value, key: k, value: v, start: k.Line - 1})
	}
	if len(d.entries) > 0 {
		d.indent = d.entries[0].key.Column - 1
		if v := d.entries[0].value; v.Kind == yaml.MappingNode && len(v.Content) > 0 && v.Style&yaml.FlowStyle == 0 {
			d.step = min(max(v.Content[0].Column-d.entries[0].key.Column, 2), 8)
		}
	}
	for i := range d.entries {
		limit := storageEnd
		if i+1 < len(d.entries) {
			limit = d.entries[i+1].start
		}
		end := limit
		for end > d.entries[i].start+1 && d.trivia(d.lines[end-1]) {
			end--
		}
		d.entries[i].end = end
		head := d.entries[i].start
		for head > 0 && isComment(d.lines[head-1]) && indentOf(d.lines[head-1]) == d.indent {
			head--
		}
		d.entries[i].head = head
	}
	return d, nil
}

var errPlainBlock = errors.New("pin edits plain block mappings only (one key per line, no \"? \" keys)")

// atLineStart reports whether only spaces precede node n on its line.
func (d *serversDoc) atLineStart(n *yaml.Node) bool {
	if n.Line < 1 || n.Line > len(d.lines) {
		return false
	}
	r := []rune(d.lines[n.Line-1])
	col := n.Column - 1
	return col >= 0 && col <= len(r) && strings.Trim(string(r[:col]), " ") == ""
}

// trivia reports whether line, found after an entry, belongs to what
// follows rather than to the entry: a blank line, a comment no deeper than
// the entry keys, or a document marker.
func (d *serversDoc) trivia(line string) bool {
	t := strings.TrimSpace(line)
	switch {
	case t == "", isMarker(line):
		return true
	case strings.HasPrefix(t, "#"):
		return indentOf(line) <= d.indent
	}
	return false
}

func isComment(line string) bool { return strings.HasPrefix(strings.TrimSpace(line), "#") }

func indentOf(line string) int { return len(line) - len(strings.TrimLeft(line, " \t")) }

func (d *serversDoc) find(id string) (docEntry, bool) {
	for _, e := range d.entries {
		if e.id == id {
			return e, true
		}
	}
	return docEntry{}, false
}

// entryText encodes "id: value" at the entries' indentation.
func (d *serversDoc) entryText(id string, value *yaml.Node) (string, error) {
	m := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: id}, value,
	}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(d.step)
	if err := enc.Encode(m); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	pad := strings.Repeat(" ", d.indent)
	var b strings.Builder
	for _, l := range strings.SplitAfter(buf.String(), "\n") {
		if l == "" {
			continue
		}
		l = strings.TrimSuffix(l, "\n")
		if l != "" {
			b.WriteString(pad)
		}
		b.WriteString(l + d.nl)
	}
	return b.String(), nil
}

// set returns the file with entry id set to value: in place if the entry
// exists, else appended after the last entry. The first line of the entry
// (1-based) is returned too.
func (d *serversDoc) set(id string, value *yaml.Node) (out []byte, line int, err error) {
	text, err := d.entryText(id, stripOuterComments(value))
	if err != nil {
		return nil, 0, err
	}
	lines := d.lines
	if e, ok := d.find(id); ok {
		return d.splice(e.start, e.end, text), e.start + 1, nil
	}
	if n := len(d.entries); n > 0 {
		at := d.entries[n-1].end
		c := d.clone()
		if !strings.HasSuffix(c.lines[at-1], "\n") {
			c.lines[at-1] += d.nl // the last line of the file had no line ending
		}
		return c.splice(at, at, text), at + 1, nil
	}
	if d.storageKey != nil {
		// "storage:" with nothing, null or {} after it: make it a block
		// mapping and add the entry under it.
		at := d.storageKey.Line - 1
		for _, l := range lines[at+1 : d.storageEnd] {
			if !blank(l) && !isComment(l) {
				return nil, 0, errors.New("storage has an empty value written on its own lines; pin edits \"storage:\" or \"storage: {}\" only")
			}
		}
		keyLine, err := d.emptyStorageLine(true)
		if err != nil {
			return nil, 0, err
		}
		c := d.clone()
		c.lines[at] = keyLine
		return c.splice(at+1, at+1, text), at + 2, nil
	}
	// No storage key: add one after the last line of the document (before
	// any trailing comments, blank lines and document markers).
	at := len(lines)
	for at > 0 && d.root != nil && (blank(lines[at-1]) || isComment(lines[at-1]) || isMarker(lines[at-1])) {
		at--
	}
	if d.root == nil && slices.ContainsFunc(lines, isMarker) {
		return nil, 0, errors.New("the file has YAML document markers (--- or ...) and no storage: add \"storage: {}\" first")
	}
	c := d.clone()
	if at > 0 && !strings.HasSuffix(c.lines[at-1], "\n") {
		c.lines[at-1] += d.nl
	}
	return c.splice(at, at, strings.Repeat(" ", d.rootIndent)+"storage:"+d.nl+text), at + 2, nil
}

// remove returns the file without entry id and the comment block right
// above it. When it was the last entry, "storage:" becomes "storage: {}"
// (Tahoe fails to start on a null storage value).
func (d *serversDoc) remove(id string) ([]byte, error) {
	e, ok := d.find(id)
	if !ok {
		return nil, fmt.Errorf("servers.yaml has no entry %q", id)
	}
	if a := anchorIn(e.key, e.value); a != "" {
		return nil, fmt.Errorf("entry %q defines the YAML anchor &%s, which other entries may use: edit the file by hand", id, a)
	}
	c := d.clone()
	if len(d.entries) == 1 {
		keyLine, err := d.emptyStorageLine(false)
		if err != nil {
			return nil, err
		}
		c.lines[d.storageKey.Line-1] = keyLine
	}
	end := e.end
	if end < len(d.lines) && blank(d.lines[end]) && (e.head == 0 || blank(d.lines[e.head-1])) {
		end++ // one blank line separated the entry from each neighbour: keep one
	}
	return c.splice(e.head, end, ""), nil
}

func blank(line string) bool { return strings.TrimSpace(line) == "" }

// isMarker reports a YAML document start or end marker line.
func isMarker(line string) bool {
	t := strings.TrimRight(line, " \t\r\n")
	return t == "..." || t == "---" || strings.HasPrefix(t, "--- ") || strings.HasPrefix(t, "... ")
}

// emptyStorageLine returns the "storage:" line with its value made empty
// (block, for entries to follow) or "{}" (no entries), keeping any
// comment after it.
func (d *serversDoc) emptyStorageLine(block bool) (string, error) {
	line := d.lines[d.storageKey.Line-1]
	body := strings.TrimRight(line, "\r\n")
	ending := line[len(body):]
	start := d.storageKey.Column - 1
	colon := strings.IndexByte(body[start:], ':')
	if colon < 0 {
		return "", errors.New("cannot find the value of storage")
	}
	colon += start
	rest := body[colon+1:]
	comment := ""
	if i := strings.Index(rest, " #"); i >= 0 {
		comment = rest[i:]
		rest = rest[:i]
	}
	switch v := strings.TrimSpace(rest); v {
	case "", "~", "null", "Null", "NULL", "{}":
	default:
		if !block {
			break // a block mapping: its entries follow on the next lines
		}
		return "", fmt.Errorf("storage has an unexpected value %q", v)
	}
	value := ""
	if !block {
		value = " {}"
	} else if ending == "" {
		ending = d.nl // the entries follow on the next line
	}
	return body[:colon+1] + value + comment + ending, nil
}

func (d *serversDoc) clone() *serversDoc {
	c := *d
	c.lines = append([]string(nil), d.lines...)
	return &c
}

// splice returns the file with lines [from, to) replaced by text.
//
// The blank and comment lines that come right after the splice lose the
// tabs in their indentation (a blank line becomes empty; a tab before a
// '#' becomes a space). Those lines now follow other content, and a tab
// there ends a plain scalar of that content with "found a tab character
// that violates indentation", although the same line was harmless where
// it stood before.
func (d *serversDoc) splice(from, to int, text string) []byte {
	var b strings.Builder
	for _, l := range d.lines[:from] {
		b.WriteString(l)
	}
	b.WriteString(text)
	rest := d.lines[to:]
	for len(rest) > 0 && (blank(rest[0]) || isComment(rest[0])) {
		b.WriteString(untab(rest[0]))
		rest = rest[1:]
	}
	for _, l := range rest {
		b.WriteString(l)
	}
	return []byte(b.String())
}

// untab returns a blank or comment line without tabs in its indentation.
func untab(line string) string {
	body := strings.TrimRight(line, "\r\n")
	ending := line[len(body):]
	text := strings.TrimLeft(body, " \t")
	lead := body[:len(body)-len(text)]
	if !strings.Contains(lead, "\t") {
		return line
	}
	if text == "" {
		return ending
	}
	return strings.ReplaceAll(lead, "\t", " ") + text + ending
}

// anchorIn returns an anchor defined in the given trees, or "".
func anchorIn(nodes ...*yaml.Node) string {
	for _, n := range nodes {
		if n == nil {
			continue
		}
		if n.Anchor != "" {
			return n.Anchor
		}
		if a := anchorIn(n.Content...); a != "" {
			return a
		}
	}
	return ""
}

// stripOuterComments returns a copy of n without the comments that
// yaml.v3 may have attached after its last descendants: those lines lie
// outside the entry's extent and stay in the file, so encoding them too
// would duplicate them.
func stripOuterComments(n *yaml.Node) *yaml.Node {
	c := *n
	c.FootComment = ""
	if len(c.Content) > 0 {
		c.Content = append([]*yaml.Node(nil), c.Content...)
		last := len(c.Content) - 1
		c.Content[last] = stripOuterComments(c.Content[last])
		if c.Kind == yaml.MappingNode && last >= 1 {
			k := *c.Content[last-1]
			k.FootComment = ""
			c.Content[last-1] = &k
		}
	}
	return &c
}
