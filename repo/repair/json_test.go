package repair

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/storage"
)

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestVaultReportJSON: 'azfs repair --json' (docs/cli.md). A skipped area
// (no index report) still prints empty lists, not null, and no index.
func TestVaultReportJSON(t *testing.T) {
	cfg := &ConfigReport{State: "damaged", From: "its signed copy", CopyWritten: true}
	rep := &VaultReport{Config: &ConfigReport{State: "sound"}, Machines: []*AreaReport{{Machine: "m", Config: cfg, Skipped: "its config cannot be rebuilt"}}}
	s := marshal(t, rep)
	for _, want := range []string{`"config":{"state":"sound","copy_written":false,"copy_damaged":false}`, `"machine":"m"`,
		`"config":{"state":"damaged","rebuilt_from":"its signed copy","copy_written":true,"copy_damaged":false}`,
		`"skipped":"its config cannot be rebuilt"`, `"junk":[]`, `"quarantine":[]`, `"problems":[]`, `"key_slots":[]`, `"key_slots_unparsable":[]`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	if strings.Contains(s, `"index"`) || strings.Contains(s, `"unchecked"`) {
		t.Errorf("%s has an index or unchecked for a skipped area", s)
	}

	written, stale, damaged := keys.ID{1}, keys.ID{2}, keys.ID{3}
	full := &AreaReport{Machine: "web01", Applied: true, Config: &ConfigReport{State: "sound"}, Slots: []string{"s1"}, NewSlot: true,
		Index: &IndexReport{Packs: 4, Files: 2, Covered: 1, Written: written, Stale: []StaleFile{{ID: stale, Why: "names a missing pack"}},
			DamagedTrailers: []keys.ID{damaged}},
		Junk:       []Moved{{Junk: repo.Junk{Name: "points/x", Size: 9, Why: errors.New("does not authenticate")}, To: "quarantine/points/x"}},
		Quarantine: []storage.Info{{Name: "quarantine/points/x", Size: 9, Modified: time.Now()}},
		Unchecked:  errors.New("certificate mode"),
		Problems:   []check.Problem{{What: "file", Name: "/a", Err: errors.New("chunk lost")}},
	}
	s = marshal(t, full)
	for _, want := range []string{`"applied":true`, `"key_slots":["s1"]`, `"new_key_slot":true`,
		`"index":{"packs":4,"index_files":2,"covered":1,"written":"` + written.String() + `","stale":["` + stale.String() + `"],"damaged_trailers":["` + damaged.String() + `"],"unindexed":[]}`,
		`"junk":[{"name":"points/x","size":9,"why":"does not authenticate","to":"quarantine/points/x"}]`,
		`"quarantine":[{"name":"quarantine/points/x","size":9}]`, `"unchecked":"certificate mode"`,
		`"problems":[{"what":"file","name":"/a","error":"chunk lost"}]`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	if full.Index.DamagedTrailers == nil || full.Index.Unindexed != nil {
		t.Error("marshalling changed the report")
	}
	if s := marshal(t, Moved{Junk: repo.Junk{Name: "index/y"}}); s != `{"name":"index/y","size":0,"why":""}` {
		t.Errorf("junk without a reason: %s", s)
	}
	// A dry run writes no index file: no "written".
	if s := marshal(t, &IndexReport{}); strings.Contains(s, "written") {
		t.Errorf("%s: written without an index file", s)
	}
	if n := (&VaultReport{Machines: []*AreaReport{full, full}}).Lost(); n != 2 {
		t.Errorf("Lost = %d, want 2", n)
	}
}
