package open_test

import (
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/open"
)

// TestReadingPoints: one point by its selector, or every live point
// newest first, the live list left as it was.
func TestReadingPoints(t *testing.T) {
	var live []*repo.Point
	for i := range 3 {
		live = append(live, &repo.Point{ID: keys.ID{byte(0xa0 + i)}, Machine: "m", Time: time.Unix(int64(1e9+i*3600), 0)})
	}
	r := &open.Reading{Live: live}
	got, err := r.Points("latest", false)
	if err != nil || len(got) != 1 || got[0] != live[2] {
		t.Errorf("Points(latest) = %v, %v; want the newest", got, err)
	}
	got, err = r.Points("", true)
	if err != nil || len(got) != 3 || got[0] != live[2] || got[2] != live[0] {
		t.Errorf("Points(all) = %v, %v; want newest first", got, err)
	}
	if r.Live[0] != live[0] {
		t.Error("Points(all) reordered Live")
	}
}
