package apikeys

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestLastUsedCoalesces: at most one write per key per interval.
func TestLastUsedCoalesces(t *testing.T) {
	t.Parallel()
	l := newLastUsed(time.Minute)
	id := uuid.Must(uuid.NewV7())
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.note(id, at(t0))
	l.note(id, at(t0.Add(time.Second)))
	if got := l.take(t0.Add(2 * time.Second)); len(got) != 1 || !got[0].At.Equal(t0) {
		t.Fatalf("first take = %v, want one use at %v", got, t0)
	}
	l.note(id, at(t0.Add(30*time.Second))) // within a minute of the write
	if got := l.take(t0.Add(40 * time.Second)); len(got) != 0 {
		t.Fatalf("a use within the interval was written again: %v", got)
	}
	late := t0.Add(2*time.Second + time.Minute)
	l.note(id, at(late))
	if got := l.take(late); len(got) != 1 || !got[0].At.Equal(late) {
		t.Fatalf("a use after the interval = %v, want one at %v", got, late)
	}
	l.putBack([]Use{{ID: id, At: late}})
	if got := l.take(late); len(got) != 1 {
		t.Fatalf("a put-back use was not taken again: %v", got)
	}
	// A failed write is put back; a later use replaces it.
	l.putBack([]Use{{ID: id, At: late}})
	later := late.Add(time.Hour)
	l.note(id, at(later))
	if got := l.take(later); len(got) != 1 || !got[0].At.Equal(later) {
		t.Fatalf("after a failed write, take = %v, want the later use %v", got, later)
	}
}

func at(t time.Time) func() time.Time { return func() time.Time { return t } }
