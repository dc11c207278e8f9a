package config

import (
	"errors"
	"reflect"
	"testing"
)

// dump flattens a parsed file to "section.key" -> raw value.
func dump(f *iniFile) map[string]string {
	m := map[string]string{}
	for _, s := range f.sections {
		m["["+s.name+"]"] = ""
		for _, k := range s.keys {
			m[s.name+"."+k.name] = k.value
		}
	}
	return m
}

func TestParseINI(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"equals and colon", "[node]\nnickname = alice\ntub.port: disabled\n",
			map[string]string{"[node]": "", "node.nickname": "alice", "node.tub.port": "disabled"}},
		{"first delimiter wins", "[node]\ntub.location = tcp:example.com:3457\n",
			map[string]string{"[node]": "", "node.tub.location": "tcp:example.com:3457"}},
		{"colon before equals", "[x]\na:b=c\n", map[string]string{"[x]": "", "x.a": "b=c"}},
		{"keys lower-cased, sections not", "[Node]\nReveal-IP-Address = False\n",
			map[string]string{"[Node]": "", "Node.reveal-ip-address": "False"}},
		{"values stripped", "[x]\nk   =    v w   \t\n", map[string]string{"[x]": "", "x.k": "v w"}},
		{"empty value", "[x]\nk =\n", map[string]string{"[x]": "", "x.k": ""}},
		{"full-line comments", "# c\n; c\n[x]\n  # indented comment\nk = v\n",
			map[string]string{"[x]": "", "x.k": "v"}},
		{"no inline comments", "[x]\nk = v # not a comment\nj = w ; nor this\n",
			map[string]string{"[x]": "", "x.k": "v # not a comment", "x.j": "w ; nor this"}},
		{"continuation lines", "[x]\nk = a\n  b\n\tc\nj = d\n",
			map[string]string{"[x]": "", "x.k": "a\nb\nc", "x.j": "d"}},
		{"blank line kept inside value, trailing dropped", "[x]\nk = a\n\n  b\n\n\n",
			map[string]string{"[x]": "", "x.k": "a\n\nb"}},
		{"comment inside value skipped", "[x]\nk = a\n  # c\n  b\n",
			map[string]string{"[x]": "", "x.k": "a\nb"}},
		{"indented option after header is an option", "[x]\n  k = v\n  j = w\n",
			map[string]string{"[x]": "", "x.k": "v", "x.j": "w"}},
		{"header to last bracket", "[a]b]\nk=v\n", map[string]string{"[a]b]": "", "a]b.k": "v"}},
		{"text after header ignored", "[node] # comment\nk=v\n", map[string]string{"[node]": "", "node.k": "v"}},
		{"BOM", "\ufeff[x]\nk=v\n", map[string]string{"[x]": "", "x.k": "v"}},
		{"CRLF and CR", "[x]\r\nk = v\r\nj = w\rl = m", map[string]string{"[x]": "", "x.k": "v", "x.j": "w", "x.l": "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseINI("t.cfg", []byte(tt.in))
			if err != nil {
				t.Fatalf("parseINI: %v", err)
			}
			if got := dump(f); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseINIErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		class error
		msg   string
	}{
		{"no header", "k = v\n", ErrSyntax,
			`config: t.cfg:1: option before the first [section] header: "k = v"`},
		{"not an option", "[x]\njunk\n", ErrSyntax,
			`config: t.cfg:2: [x] line is not a [section] header, a "key = value" option or a comment: "junk"`},
		{"empty name", "[x]\n= v\n", ErrSyntax, `config: t.cfg:2: [x] option with an empty name: "= v"`},
		{"duplicate section", "[x]\n[y]\n[x]\n", ErrDuplicate, `config: t.cfg:3: [x] section already defined at line 1`},
		{"duplicate key", "[x]\nk = 1\nK = 2\n", ErrDuplicate, `config: t.cfg:3: [x] k: key already defined at line 2`},
		{"DEFAULT", "[DEFAULT]\nk = v\n", ErrSyntax,
			`config: t.cfg:1: [DEFAULT] the [DEFAULT] section is not supported (its keys would apply to every section, which Tahoe rejects)`},
		{"invalid UTF-8", "[x]\nk = \xff\n", ErrSyntax, `config: t.cfg:2: file is not valid UTF-8`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseINI("t.cfg", []byte(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.class) {
				t.Errorf("error %v is not %v", err, tt.class)
			}
			if err.Error() != tt.msg {
				t.Errorf("error\n got %s\nwant %s", err, tt.msg)
			}
		})
	}
}

func TestInterpolation(t *testing.T) {
	f, err := parseINI("t.cfg", []byte("[x]\nhost = h\npct = 100%%\nref = tcp:%(host)s:1\nnested = %(ref)s/%(PCT)s\n"+
		"lone = 5%\nbadref = %(missing)s\nbadsyntax = %(host\nloop = %(loop)s\n"))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"pct": "100%", "ref": "tcp:h:1", "nested": "tcp:h:1/100%"} {
		got, _, err := f.get("x", key)
		if err != nil || got != want {
			t.Errorf("get %s = %q, %v; want %q", key, got, err, want)
		}
	}
	for key, msg := range map[string]string{
		"lone":      `config: t.cfg:6: [x] lone: '%' must be followed by '%' or '(', found: "%" (write %% for a literal %)`,
		"badref":    `config: t.cfg:7: [x] badref: interpolation references missing option "missing" in section [x]`,
		"badsyntax": `config: t.cfg:8: [x] badsyntax: bad interpolation variable reference "%(host"`,
		"loop":      `config: t.cfg:9: [x] loop: interpolation nested too deeply (more than 10 levels of %(name)s)`,
	} {
		_, _, err := f.get("x", key)
		if err == nil || err.Error() != msg || !errors.Is(err, ErrInvalidValue) {
			t.Errorf("get %s: error %v; want %s", key, err, msg)
		}
	}
}
