package policy

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/repo"
)

// TestSelectToForgetUndelete: selectors name live points to forget and
// forgotten ones to undelete, each point once, in the order given; one that
// names a point of the other list says so.
func TestSelectToForgetUndelete(t *testing.T) {
	f := newFixture(t)
	points := f.addPoints(t, 3)
	if err := Forget(context.Background(), f.machine(), f.owner, IDs(points[:1]), t0); err != nil {
		t.Fatal(err)
	}
	s := f.load(t)
	short := func(i int) string { return points[i].ID.String()[:12] }
	got, err := s.SelectToForget(s.Live(), []string{short(2), "latest", short(1)}, time.UTC)
	if err != nil || !slices.Equal(IDs(got), IDs([]*repo.Point{points[2], points[1]})) {
		t.Errorf("SelectToForget: %v, %v; want the last point, then the second", IDs(got), err)
	}
	if _, err := s.SelectToForget(s.Live(), []string{short(0)}, time.UTC); err == nil || !strings.Contains(err.Error(), "forgotten already") {
		t.Errorf("forgetting a forgotten point: %v, want 'forgotten already'", err)
	}
	got, err = s.SelectToUndelete([]string{short(0)}, time.UTC)
	if err != nil || !slices.Equal(IDs(got), IDs(points[:1])) {
		t.Errorf("SelectToUndelete: %v, %v; want the first point", IDs(got), err)
	}
	if _, err := s.SelectToUndelete([]string{short(1)}, time.UTC); err == nil || !strings.Contains(err.Error(), "not forgotten") {
		t.Errorf("undeleting a live point: %v, want 'not forgotten'", err)
	}
	if _, err := s.SelectToUndelete([]string{"ffffffffffff"}, time.UTC); err == nil {
		t.Error("undeleting a point that does not exist succeeded")
	}
}
