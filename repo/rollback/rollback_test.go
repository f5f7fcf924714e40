package rollback

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func point(n byte, hours int) *repo.Point {
	var id keys.ID
	id[0], id[31] = n, 1
	return &repo.Point{ID: id, Time: t0.Add(time.Duration(hours) * time.Hour)}
}

func TestCheck(t *testing.T) {
	p1, p2, p3, p4 := point(1, 0), point(2, 1), point(3, 2), point(4, 3)
	now := t0.Add(100 * time.Hour)

	m, err := Check(Mark{}, nil, now)
	if err != nil || !m.IsZero() {
		t.Fatalf("no mark, no points: %+v %v", m, err)
	}
	m, err = Check(Mark{}, []*repo.Point{p2, p1}, now)
	if err != nil || m.Point != p2.ID || !m.Taken.Equal(p2.Time) || !m.Seen.Equal(now) {
		t.Fatalf("first listing marks the newest: %+v %v", m, err)
	}
	if m2, err := Check(m, []*repo.Point{p1, p2}, now.Add(time.Hour)); err != nil || m2 != m {
		t.Fatalf("same listing: %+v %v", m2, err)
	}
	m, err = Check(m, []*repo.Point{p1, p2, p3}, now)
	if err != nil || m.Point != p3.ID {
		t.Fatalf("a newer point moves the mark: %+v %v", m, err)
	}

	// The storage hides p3: reported, and the mark stays on it.
	rolled, err := Check(m, []*repo.Point{p1, p2}, now.Add(time.Hour))
	var rb *RolledBackError
	if !errors.Is(err, ErrRolledBack) || !errors.As(err, &rb) || rb.Mark.Point != p3.ID {
		t.Fatalf("hidden newest point: %+v %v", rolled, err)
	}
	if !strings.Contains(err.Error(), p3.ID.Short()) || rolled.Point != p3.ID || !rolled.Missing.Equal(now.Add(time.Hour)) {
		t.Fatalf("report %q, mark %+v", err, rolled)
	}
	// A backup into the rolled-back vault, or a newer point shown later,
	// does not make it current again.
	if c := Committed(rolled, p4, now); c != rolled {
		t.Fatalf("commit after a rollback moved the mark: %+v", c)
	}
	again, err := Check(rolled, []*repo.Point{p1, p2, p4}, now.Add(2*time.Hour))
	if !errors.Is(err, ErrRolledBack) || again != rolled {
		t.Fatalf("a newer point after the rollback: %+v %v", again, err)
	}
	// The point comes back: the report ends and the mark moves on.
	back, err := Check(again, []*repo.Point{p1, p2, p3, p4}, now)
	if err != nil || back.Point != p4.ID || !back.Missing.IsZero() {
		t.Fatalf("point back: %+v %v", back, err)
	}
	// Everything gone.
	if _, err := Check(back, nil, now); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("every point gone: %v", err)
	}

	// The marked point gone while newer ones came (a purge after the owner
	// forgot it): not reported.
	if m, err := Check(markOf(p2, now), []*repo.Point{p1, p3}, now); err != nil || m.Point != p3.ID {
		t.Fatalf("purged with newer points: %+v %v", m, err)
	}
}

func TestCommitted(t *testing.T) {
	p1, p2 := point(1, 0), point(2, 1)
	now := t0.Add(time.Hour)
	if m := Committed(Mark{}, p1, now); m.Point != p1.ID {
		t.Fatalf("first commit: %+v", m)
	}
	if m := Committed(markOf(p2, now), p1, now); m.Point != p2.ID {
		t.Fatalf("an older commit (clock set back) moved the mark: %+v", m)
	}
	if m := Committed(markOf(p1, now), p2, now); m.Point != p2.ID {
		t.Fatalf("a newer commit: %+v", m)
	}
}

func TestNewestTies(t *testing.T) {
	a, b := point(1, 0), point(2, 0)
	for _, ps := range [][]*repo.Point{{a, b}, {b, a}} {
		if n := Newest(ps); n != b {
			t.Fatalf("tie broken by ID: got %s", n.ID.Short())
		}
	}
	m := markOf(a, t0)
	if m2, err := Check(m, []*repo.Point{b}, t0); err != nil || m2.Point != b.ID {
		t.Fatalf("a point of the same time and higher ID is newer: %+v %v", m2, err)
	}
	if Newest(nil) != nil {
		t.Fatal("Newest(nil)")
	}
}
