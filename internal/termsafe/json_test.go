package termsafe

import (
	"encoding/json"
	"testing"
)

func TestJSON(t *testing.T) {
	in := map[string]string{"nickname": "a\u009b31m\u202eb\x7f\u2028c", "plain": "é ok"}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got := JSON(raw)
	for _, r := range string(got) {
		if r < 0x20 || r >= 0x7f && r <= 0x9f || unsafeFormat(r) {
			t.Fatalf("JSON kept %U: %s", r, got)
		}
	}
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil || back["nickname"] != in["nickname"] || back["plain"] != in["plain"] {
		t.Fatalf("JSON changed the value: %v %q", err, back)
	}
}
