package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// appendCacheYAML encodes verified signed entries in the cache format
// without a general YAML encoder: a block sequence of mappings whose
// scalars are double-quoted and whose "ann" is one flow mapping, keys
// sorted. Any YAML loader (PyYAML's safe_load, which Tahoe uses, included)
// reads the same data as from MarshalCache's output; writing it costs a
// small fraction. Every entry must have Signed and Announcement set.
func appendCacheYAML(dst []byte, entries []CacheEntry) ([]byte, error) {
	if len(entries) == 0 {
		return append(dst, "[]\n"...), nil
	}
	for i, e := range entries {
		if e.Signed == nil || e.Announcement.fields == nil {
			return nil, fmt.Errorf("entry %d has no verified signed form", i)
		}
		dst = append(dst, "- ann: "...)
		var err error
		if dst, err = appendFlow(dst, e.Announcement.fields, 0); err != nil {
			return nil, err
		}
		dst = append(dst, "\n  key_s: "...)
		dst = appendQuoted(dst, e.Signed.Key)
		dst = append(dst, "\n  msg: "...)
		dst = appendQuoted(dst, string(e.Signed.Msg))
		dst = append(dst, "\n  sig: "...)
		dst = appendQuoted(dst, e.Signed.Sig)
		dst = append(dst, '\n')
	}
	return dst, nil
}

// appendFlow appends a normalized announcement value in YAML flow style.
func appendFlow(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxNesting {
		return nil, classErr(ErrInvalidValue, "nested too deep")
	}
	var err error
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case float64:
		// YAML 1.1 (PyYAML) reads a float only with a dot and a signed
		// exponent: 1.0e+06, never 1e+06.
		s := strconv.FormatFloat(x, 'e', -1, 64)
		if !strings.Contains(s, ".") {
			s = strings.Replace(s, "e", ".0e", 1)
		}
		return append(dst, s...), nil
	case string:
		return appendQuoted(dst, x), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			if dst, err = appendFlow(dst, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		dst = append(dst, '{')
		for i, k := range slices.Sorted(maps.Keys(x)) {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = appendQuoted(dst, k)
			dst = append(dst, ": "...)
			if dst, err = appendFlow(dst, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
	return nil, classErr(ErrType, fmt.Sprintf("unsupported value of type %T", v))
}

// appendQuoted appends s as a YAML double-quoted scalar. Characters a YAML
// stream may not hold raw, or reads as a line break (C0 and C1 controls,
// DEL, U+2028, U+2029, U+FEFF, U+FFFE, U+FFFF), are escaped, as are '"'
// and '\'.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0x2028 || r == 0x2029 || r == 0xfeff || r == 0xfffe || r == 0xffff || r == utf8.RuneError:
			dst = fmt.Appendf(dst, "\\u%04x", r)
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}
