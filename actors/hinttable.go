package actors

import (
	"slices"
	"sync"
)

// A hintTable holds the hint progress of one connection attempt: a row per
// hint, in the order first reported. The child actor updates it in place,
// through transition, for O(1) work per report; the published snapshot
// points at it and readers copy the rows when they read it. Each attempt
// has its own table, so a snapshot never shows another attempt's rows.
type hintTable struct {
	mu    sync.Mutex // guards the following fields
	rows  []HintStatus
	index map[string]int // hint → position in rows
}

// set records status for hint: in its row if it has one, else in a new
// row at the end.
func (t *hintTable) set(hint, status string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[hint]; ok {
		t.rows[i].Status = status
		return
	}
	if t.index == nil {
		t.index = make(map[string]int)
	}
	t.index[hint] = len(t.rows)
	t.rows = append(t.rows, HintStatus{Hint: hint, Status: status})
}

// copy returns a copy of the rows; nil for a nil table or no rows.
func (t *hintTable) copy() []HintStatus {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.rows)
}
