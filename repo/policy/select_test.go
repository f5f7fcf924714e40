package policy

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
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
	got, err := s.SelectToForget(repo.TagFilter{}, []string{short(2), "latest", short(1)}, time.UTC)
	if err != nil || !slices.Equal(IDs(got), IDs([]*repo.Point{points[2], points[1]})) {
		t.Errorf("SelectToForget: %v, %v; want the last point, then the second", IDs(got), err)
	}
	if _, err := s.SelectToForget(repo.TagFilter{}, []string{short(0)}, time.UTC); err == nil || !strings.Contains(err.Error(), "forgotten already") {
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

	// With a tag filter: the live points with the tags, or those of them
	// the selectors name; a filter no live point matches is an error.
	tagged := &repo.Point{Machine: "web01", Time: t0, Root: keys.ID{1}, Paths: []string{"/"}, Tags: []string{"db"}}
	if err := f.v.SavePoint(context.Background(), tagged); err != nil {
		t.Fatal(err)
	}
	s = f.load(t)
	db, _ := repo.ParseTagFilter([]string{"db"})
	if got, err := s.SelectToForget(db, nil, time.UTC); err != nil || !slices.Equal(IDs(got), IDs([]*repo.Point{tagged})) {
		t.Errorf("--tag db without selectors: %v, %v", IDs(got), err)
	}
	if got, err := s.SelectToForget(repo.TagFilter{}, nil, time.UTC); err != nil || len(got) != 3 {
		t.Errorf("no filter, no selectors: %v, %v; want every live point", IDs(got), err)
	}
	if _, err := s.SelectToForget(db, []string{short(1)}, time.UTC); !errors.Is(err, repo.ErrUnknownPoint) {
		t.Errorf("--tag db naming an untagged point: %v, want ErrUnknownPoint", err)
	}
	web, _ := repo.ParseTagFilter([]string{"web"})
	if _, err := s.SelectToForget(web, nil, time.UTC); !errors.Is(err, repo.ErrUnknownPoint) {
		t.Errorf("--tag web, which no point has: %v, want ErrUnknownPoint", err)
	}
}

// TestForgetSelected: forgetting spends the PIN first; a refused PIN
// forgets nothing; the points stay recoverable for the window.
func TestForgetSelected(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	points := f.addPoints(t, 2)
	s := f.load(t)
	refused := errors.New("PIN refused")
	if _, err := s.ForgetSelected(ctx, f.owner, points[:1], func() error { return refused }, t0); !errors.Is(err, refused) {
		t.Errorf("refused PIN: %v", err)
	}
	sameIDs(t, "live after a refused PIN", f.load(t).Live(), points)
	spent := false
	until, err := s.ForgetSelected(ctx, f.owner, points[:1], func() error { spent = true; return nil }, t0)
	if err != nil || !spent || !until.Equal(t0.Add(DefaultWindow)) {
		t.Errorf("ForgetSelected = %v, %v (PIN spent %v)", until, err, spent)
	}
	s = f.load(t)
	sameIDs(t, "live after forgetting", s.Live(), points[1:])
	if st, _ := s.Status(points[0].ID); !st.ByOwner {
		t.Errorf("status %+v, want forgotten by the owner", st)
	}
}
