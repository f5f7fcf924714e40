package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/azfs/azfs/repo/repair"
)

// A skipped area (no index report) still prints empty lists, not null.
func TestRepairJSONSkippedArea(t *testing.T) {
	cfg := &repair.ConfigReport{State: "damaged"}
	out := repairJSON(cfg, []*repair.AreaReport{{Machine: "m", Config: cfg, Skipped: "its config cannot be rebuilt"}})
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"junk":[]`, `"quarantine":[]`, `"problems":[]`, `"key_slots":[]`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	if strings.Contains(s, `"index"`) {
		t.Errorf("%s has an index for a skipped area", s)
	}
}
