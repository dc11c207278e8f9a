package cli

import (
	"os"
	"testing"

	"github.com/tubfarm/tubfarm/config"
)

// FuzzServersDocEdit checks the editor on any servers.yaml the loader
// accepts: adding an entry, changing the first one and removing it are
// either refused up front (flow style, a shape it does not edit) or
// produce a file that loads with every other entry unchanged. (pin
// validates the result anyway; a failure here is an edit it would refuse
// for no good reason.)
func FuzzServersDocEdit(f *testing.F) {
	golden, err := os.ReadFile("testdata/node/private/servers.yaml")
	if err != nil {
		f.Fatal(err)
	}
	const e = "  x:\n    ann:\n      anonymous-storage-FURL: pb://aaaa@tcp:a.example:1/s\n"
	for _, s := range []string{
		string(golden),
		"storage: {}\n", "storage:\n", "", "# only a comment\n", "storage: ~ # none\n",
		"a: 1\nstorage:\n" + e + "# end\nb: 2\n",
		"storage:\r\n  x:\r\n    ann:\r\n      anonymous-storage-FURL: pb://aaaa@tcp:a.example:1/s\r\n",
		"---\nstorage:\n" + e + "...\n",
		"storage:\n" + e + "  # about y\n  y:\n    ann: &a\n      anonymous-storage-FURL: pb://bbbb@tcp:b.example:1/s\n  z:\n    ann: *a\n",
		"storage:\n    x:\n        ann:\n            anonymous-storage-FURL: pb://aaaa@tcp:a.example:1/s\n            # trailing\n",
		"storage:\n" + e + "    connections: {tcp: tor}\n",
	} {
		f.Add([]byte(s))
	}
	ann, err := config.NewAnnouncement(map[string]any{config.FieldFURL: "pb://cccc@tcp:c.example:1/s", config.FieldNickname: "new"})
	if err != nil {
		f.Fatal(err)
	}
	const newID = "v0-new"
	f.Fuzz(func(t *testing.T, data []byte) {
		old, err := config.ParseServers("servers.yaml", data, nil)
		if err != nil {
			return
		}
		doc, err := parseServersDoc(data)
		if err != nil {
			return
		}
		for _, s := range old.Servers {
			if s.ID == newID {
				return
			}
		}
		value, err := entryNode(ann)
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := doc.set(newID, value)
		if err != nil {
			return // refused up front
		}
		if _, err = validateEdit("servers.yaml", data, out, nil, newID, true); err != nil {
			t.Fatalf("adding an entry to\n%s\nfailed: %v\nresult:\n%s", data, err, out)
		}
		if len(doc.entries) == 0 {
			return
		}
		first := doc.entries[0].id
		if out, _, err = doc.set(first, deepCopy(doc.entries[0].value)); err != nil {
			return
		}
		if _, err = validateEdit("servers.yaml", data, out, nil, first, true); err != nil {
			t.Fatalf("rewriting entry %q of\n%s\nfailed: %v\nresult:\n%s", first, data, err, out)
		}
		if out, err = doc.remove(first); err != nil {
			return
		}
		if _, err = validateEdit("servers.yaml", data, out, nil, first, false); err != nil {
			t.Fatalf("removing entry %q of\n%s\nfailed: %v\nresult:\n%s", first, data, err, out)
		}
	})
}
