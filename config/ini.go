package config

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is a small reimplementation of the parts of Python 3's
// configparser.ConfigParser that tahoe.cfg relies on (see the package
// documentation for why it is not a dependency). The reference is
// configparser.RawConfigParser._read and BasicInterpolation in CPython 3.11,
// with Tahoe's settings: default delimiters ("=" and ":"), full-line
// comment prefixes "#" and ";", no inline comments, empty lines allowed in
// values, options lower-cased, and a UTF-8 file with an optional BOM.
//
// One deliberate difference: Tahoe uses strict=False, where a repeated
// section is merged and a repeated key silently replaces the earlier one.
// Here both are errors (strict=True behaviour), because a silently
// replaced key is exactly the kind of mistake that loses servers.

// iniFile is a parsed INI document.
type iniFile struct {
	path     string
	sections []*iniSection
	byName   map[string]*iniSection
	// budget is what is left of the interpolation work allowed for the
	// whole file: maxInterpolatedSize plus twice the file's size.
	budget int
}

// iniSection is one [section] and its options in file order.
type iniSection struct {
	name  string
	line  int
	keys  []*iniKey
	byKey map[string]*iniKey
}

// iniKey is one option. value is the raw value (continuation lines joined
// with "\n", trailing whitespace removed), before interpolation.
type iniKey struct {
	name  string // lower-cased
	value string
	line  int
	parts []string
}

// section returns the named section or nil.
func (f *iniFile) section(name string) *iniSection {
	if f == nil {
		return nil
	}
	return f.byName[name]
}

// get returns the interpolated value of key in section and whether it was
// set. Interpolation errors are reported as *FileError.
func (f *iniFile) get(section, key string) (string, *iniKey, error) {
	s := f.section(section)
	if s == nil {
		return "", nil, nil
	}
	k := s.byKey[key]
	if k == nil {
		return "", nil, nil
	}
	v, err := s.interpolate(k.value, 1, &f.budget)
	if err != nil {
		return "", k, &FileError{Path: f.path, Line: k.line, Section: section, Field: key, Err: err}
	}
	return v, k, nil
}

// maxInterpolationDepth is configparser.MAX_INTERPOLATION_DEPTH.
const maxInterpolationDepth = 10

// maxInterpolatedSize bounds the work of interpolating the values read from
// one tahoe.cfg, beyond twice the file's size: every byte of a value
// expanded at any level of nesting and every %(name)s reference counts one
// unit. configparser has no such bound, so a 3 KB tahoe.cfg whose values
// each refer several times to the one before can expand one value to
// hundreds of megabytes; no real tahoe.cfg comes near 64 KiB.
const maxInterpolatedSize = 64 << 10

// interpolate applies configparser.BasicInterpolation: "%%" is a literal
// "%", "%(name)s" is the (interpolated) value of option name in the same
// section, and any other "%" is an error, as it is when Tahoe calls
// ConfigParser.get. budget is what is left of maxInterpolatedSize.
func (s *iniSection) interpolate(v string, depth int, budget *int) (string, error) {
	if depth > maxInterpolationDepth {
		return "", classErr(ErrInvalidValue, "interpolation nested too deeply (more than 10 levels of %(name)s)")
	}
	*budget -= len(v) + 1
	if *budget < 0 {
		return "", classErr(ErrTooLarge, "interpolation expands beyond the limit ("+itoa(maxInterpolatedSize)+" bytes plus twice the file's size)")
	}
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	rest := v
	for rest != "" {
		p := strings.IndexByte(rest, '%')
		if p < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:p])
		rest = rest[p:]
		switch {
		case strings.HasPrefix(rest, "%%"):
			b.WriteByte('%')
			rest = rest[2:]
		case strings.HasPrefix(rest, "%("):
			end := strings.IndexByte(rest, ')')
			if end < 3 || !strings.HasPrefix(rest[end:], ")s") {
				return "", classErr(ErrInvalidValue, "bad interpolation variable reference "+quote(rest))
			}
			name := strings.ToLower(rest[2:end])
			rest = rest[end+2:]
			ref := s.byKey[name]
			if ref == nil {
				return "", classErr(ErrInvalidValue, "interpolation references missing option "+quote(name)+" in section ["+s.name+"]")
			}
			sub, err := s.interpolate(ref.value, depth+1, budget)
			if err != nil {
				return "", err
			}
			b.WriteString(sub)
		default:
			return "", classErr(ErrInvalidValue, "'%' must be followed by '%' or '(', found: "+quote(rest)+" (write %% for a literal %)")
		}
	}
	return b.String(), nil
}

// pySpace reports whether r is whitespace for Python's str.isspace and
// str.strip: Go's unicode.IsSpace plus the ASCII separators U+001C–U+001F.
func pySpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f
}

func pyStrip(s string) string  { return strings.TrimFunc(s, pySpace) }
func pyRStrip(s string) string { return strings.TrimRightFunc(s, pySpace) }

// splitLines splits like Python's universal-newline text mode: "\r\n",
// "\r" and "\n" all end a line. Line terminators are dropped.
func splitLines(s string) []string {
	var lines []string
	for s != "" {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	return lines
}

var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// parseINI parses data (the contents of path) with configparser semantics.
func parseINI(path string, data []byte) (*iniFile, error) {
	fail := func(line int, section, field string, err error) (*iniFile, error) {
		return nil, &FileError{Path: path, Line: line, Section: section, Field: field, Err: err}
	}
	data = bytes.TrimPrefix(data, utf8BOM) // Tahoe reads with "utf-8-sig"
	if !utf8.Valid(data) {
		line := 1 + bytes.Count(data[:firstInvalidUTF8(data)], []byte("\n"))
		return fail(line, "", "", classErr(ErrSyntax, "file is not valid UTF-8"))
	}
	f := &iniFile{path: path, byName: map[string]*iniSection{}, budget: maxInterpolatedSize + 2*len(data) + 1024}
	var (
		cur         *iniSection
		opt         *iniKey
		indentLevel int
	)
	for i, line := range splitLines(string(data)) {
		lineno := i + 1
		stripped := pyStrip(line)
		comment := strings.HasPrefix(stripped, "#") || strings.HasPrefix(stripped, ";")
		if comment || stripped == "" {
			// empty_lines_in_values=True: a blank (not comment) line
			// inside a value is kept; trailing ones are stripped at the
			// end.
			if !comment && cur != nil && opt != nil {
				opt.parts = append(opt.parts, "")
			}
			continue
		}
		indent := 0
		for _, r := range line {
			if !pySpace(r) {
				break
			}
			indent++
		}
		if cur != nil && opt != nil && indent > indentLevel {
			opt.parts = append(opt.parts, stripped)
			continue
		}
		indentLevel = indent
		// SECTCRE: "\[(?P<header>.+)\]" matched at the start of the line:
		// the header runs to the last ']' and anything after it is
		// ignored.
		if strings.HasPrefix(stripped, "[") {
			if end := strings.LastIndexByte(stripped, ']'); end > 1 {
				name := stripped[1:end]
				if name == "DEFAULT" {
					return fail(lineno, name, "", classErr(ErrSyntax,
						"the [DEFAULT] section is not supported (its keys would apply to every section, which Tahoe rejects)"))
				}
				if prev := f.byName[name]; prev != nil {
					return fail(lineno, name, "", classErr(ErrDuplicate,
						"section already defined at line "+itoa(prev.line)))
				}
				cur = &iniSection{name: name, line: lineno, byKey: map[string]*iniKey{}}
				f.sections = append(f.sections, cur)
				f.byName[name] = cur
				opt = nil
				continue
			}
		}
		if cur == nil {
			return fail(lineno, "", "", classErr(ErrSyntax,
				"option before the first [section] header: "+quote(stripped)))
		}
		// OPTCRE: "(?P<option>.*?)\s*(?P<vi>=|:)\s*(?P<value>.*)$".
		d := strings.IndexAny(stripped, "=:")
		if d < 0 {
			return fail(lineno, cur.name, "", classErr(ErrSyntax,
				"line is not a [section] header, a \"key = value\" option or a comment: "+quote(stripped)))
		}
		name := strings.ToLower(pyRStrip(stripped[:d]))
		if name == "" {
			return fail(lineno, cur.name, "", classErr(ErrSyntax, "option with an empty name: "+quote(stripped)))
		}
		if prev := cur.byKey[name]; prev != nil {
			return fail(lineno, cur.name, name, classErr(ErrDuplicate,
				"key already defined at line "+itoa(prev.line)))
		}
		opt = &iniKey{name: name, line: lineno, parts: []string{pyStrip(stripped[d+1:])}}
		cur.keys = append(cur.keys, opt)
		cur.byKey[name] = opt
	}
	for _, s := range f.sections {
		for _, k := range s.keys {
			k.value = pyRStrip(strings.Join(k.parts, "\n"))
			k.parts = nil
		}
	}
	return f, nil
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}
