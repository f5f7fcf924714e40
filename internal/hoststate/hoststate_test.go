package hoststate

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDisableEnableState(t *testing.T) {
	d := StateDir(t.TempDir(), "vaultid", "web01")
	if _, disabled, err := d.Disabled(); err != nil || disabled {
		t.Fatalf("fresh state: disabled %v, %v", disabled, err)
	}
	t0 := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	if err := d.Disable(t0); err != nil {
		t.Fatal(err)
	}
	if err := d.Disable(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if since, disabled, err := d.Disabled(); err != nil || !disabled || !since.Equal(t0) {
		t.Errorf("after Disable: since %v, disabled %v, %v; want since %v", since, disabled, err, t0)
	}
	for range 2 {
		if err := d.Enable(); err != nil {
			t.Fatal(err)
		}
	}
	if _, disabled, err := d.Disabled(); err != nil || disabled {
		t.Errorf("after Enable: disabled %v, %v", disabled, err)
	}
}

func TestLast(t *testing.T) {
	d := StateDir(t.TempDir(), "vaultid", "web01")
	if _, ok, err := d.LoadLast(); ok || err != nil {
		t.Fatalf("LoadLast of nothing: %v, %v", ok, err)
	}
	want := Last{Point: strings.Repeat("ab", 32), Time: time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC), Partial: true}
	if err := d.SaveLast(want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := d.LoadLast()
	if err != nil || !ok || got.Point != want.Point || !got.Time.Equal(want.Time) || !got.Partial {
		t.Errorf("LoadLast: %+v, %v, %v; want %+v", got, ok, err, want)
	}
	if err := os.WriteFile(d.lastFile(), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.LoadLast(); ok || err == nil {
		t.Errorf("LoadLast of a torn record: %v, %v; want an error", ok, err)
	}
}

// TestLastOfSets: last.json records the last point of each backup set; a
// record written before sets reads as the last point of the set without a
// name, and an older azfs still finds the last point at the top.
func TestLastOfSets(t *testing.T) {
	d := StateDir(t.TempDir(), "vaultid", "web01")
	at := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	old := `{"point":"` + strings.Repeat("ab", 32) + `","time":"2026-06-10T12:00:00Z"}`
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.lastFile(), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	sets, err := d.LoadLastOfSets()
	if err != nil || len(sets) != 1 || sets[""].Point != strings.Repeat("ab", 32) {
		t.Fatalf("LoadLastOfSets of a record before sets: %+v, %v", sets, err)
	}
	etc := Last{Point: strings.Repeat("cd", 32), Time: at.Add(time.Hour), Set: "etc"}
	if err := d.SaveLast(etc); err != nil {
		t.Fatal(err)
	}
	sets, err = d.LoadLastOfSets()
	if err != nil || len(sets) != 2 || sets["etc"] != etc || !sets[""].Time.Equal(at) {
		t.Errorf("LoadLastOfSets: %+v, %v", sets, err)
	}
	var top struct {
		Point string `json:"point"`
	}
	b, err := os.ReadFile(d.lastFile())
	if err == nil {
		err = json.Unmarshal(b, &top)
	}
	if err != nil || top.Point != etc.Point {
		t.Errorf("the top of last.json names %q (%v), want the last point committed", top.Point, err)
	}
}
