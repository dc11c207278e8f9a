package foolscap

import (
	"fmt"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// describe formats a decoded value for an error message or a log line,
// about as Python's repr would, in at most max bytes: past that it stops
// walking and ends with "…". Every element it visits writes at least one
// byte, so describing costs O(max) whatever the value: a value built from
// shared references, whose expansion can be exponential in its size, or a
// 1 MiB integer, which it does not convert to decimal.
func describe(v any, max int) string {
	w := describer{max: max}
	w.value(v)
	if w.full {
		return string(w.b) + "…"
	}
	return string(w.b)
}

type describer struct {
	b    []byte
	max  int
	full bool
}

func (w *describer) write(s string) bool {
	if w.full {
		return false
	}
	if len(w.b)+len(s) > w.max {
		n := w.max - len(w.b)
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		w.b = append(w.b, s[:max(n, 0)]...)
		w.full = true
		return false
	}
	w.b = append(w.b, s...)
	return true
}

func (w *describer) value(v any) bool {
	switch x := v.(type) {
	case nil:
		return w.write("None")
	case bool:
		if x {
			return w.write("True")
		}
		return w.write("False")
	case []byte:
		if len(x) > w.max {
			x = x[:w.max]
		}
		return w.write("b" + strconv.Quote(string(x)))
	case string:
		if len(x) > w.max {
			x = x[:w.max]
		}
		return w.write(strconv.Quote(x))
	case *big.Int:
		if x.BitLen() > 256 {
			return w.write(fmt.Sprintf("<int of %d bits>", x.BitLen()))
		}
		return w.write(x.String())
	case []any:
		return w.seq("[", "]", x)
	case Tuple:
		return w.seq("(", ")", x)
	case Set:
		return w.seq("{", "}", x)
	case FrozenSet:
		return w.seq("frozenset({", "})", x)
	case Dict:
		if !w.write("{") {
			return false
		}
		for i, it := range x {
			if i > 0 && !w.write(", ") {
				return false
			}
			if !w.value(it.Key) || !w.write(": ") || !w.value(it.Value) {
				return false
			}
		}
		return w.write("}")
	case *RemoteError:
		return w.write("<Failure ") && w.write(x.Type) && w.write(": ") && w.write(x.Value) && w.write(">")
	case *RemoteRef:
		return w.write(x.String())
	case Decimal:
		return w.value(string(x))
	case int64, float64:
		return w.write(fmt.Sprint(x))
	}
	return w.write(fmt.Sprintf("<%T>", v))
}

func (w *describer) seq(open, close string, items []any) bool {
	if !w.write(open) {
		return false
	}
	for i, it := range items {
		if i > 0 && !w.write(", ") {
			return false
		}
		if !w.value(it) {
			return false
		}
	}
	return w.write(close)
}
