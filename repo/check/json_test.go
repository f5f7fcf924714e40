package check_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/azfs/azfs/repo/check"
)

// TestResultJSON: a Result marshals as 'azfs check --json' (docs/cli.md):
// its keys, problems [] when none, each problem's error as its message.
func TestResultJSON(t *testing.T) {
	f := newFixture(t)
	res, err := runCheck(t, f.vault(t), false)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	decode(t, res, &out)
	want := []string{"bytes_read", "chunks", "damage_remembered", "packs", "packs_read", "points", "problems", "redundant", "tree_parts", "unreadable"}
	var got []string
	for k := range out {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	if ps, ok := out["problems"].([]any); !ok || len(ps) != 0 {
		t.Errorf("problems of a clean vault: %#v, want []", out["problems"])
	}
	if out["points"] != 1.0 {
		t.Errorf("points %v, want 1", out["points"])
	}

	res.Problems = []check.Problem{{What: "file", Name: "/a\nb", Err: errors.New("chunk 1234 damaged")}}
	var withProblem struct {
		Problems []map[string]string `json:"problems"`
	}
	decode(t, res, &withProblem)
	if p := withProblem.Problems; len(p) != 1 || p[0]["what"] != "file" || p[0]["name"] != "/a\nb" || p[0]["error"] != "chunk 1234 damaged" || len(p[0]) != 3 {
		t.Errorf("problem as JSON: %v", p)
	}
	// A problem without an error marshals, with an empty one.
	if b, err := json.Marshal(check.Problem{What: "pack", Name: "x"}); err != nil || string(b) != `{"what":"pack","name":"x","error":""}` {
		t.Errorf("problem without an error: %s, %v", b, err)
	}
}

func decode(t *testing.T, v, into any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}
