package integration

// Point tags (issue 13, item 1): 'azfs backup --tag T', shown by 'points'
// and selected by 'points --tag', 'azmount --tag' and 'forget --tag'.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTags: four points (no tag; web; web and daily; db) of one tree
// whose file holds the point's number. Repeated --tag is OR, commas AND,
// an empty value the untagged points, in points, azmount and forget.
func TestTags(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(e.dir, "src"))
	var ids []string
	for i, tags := range [][]string{nil, {"web"}, {"web", "daily"}, {"db"}} {
		writeFile(t, filepath.Join(src, "n"), []byte{'0' + byte(i)}, 0o644)
		args := []string{"backup", "--json"}
		for _, tag := range tags {
			args = append(args, "--tag", tag)
		}
		ids = append(ids, parseBackup(t, e.mustAzfs(append(args, src)...)).Point)
		time.Sleep(1100 * time.Millisecond)
	}
	plain, web, webDaily, db := ids[0], ids[1], ids[2], ids[3]

	rows := e.setRows()
	for i, want := range [][]string{nil, {"web"}, {"daily", "web"}, {"db"}} {
		if !slices.Equal(rows[i].Tags, want) {
			t.Errorf("points --json: point %d has tags %q, want %q", i, rows[i].Tags, want)
		}
	}
	out := e.mustAzfs("points").stdout
	if !strings.Contains(out, "TAGS") || !strings.Contains(out, " daily,web ") {
		t.Errorf("points does not show the tags:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--tag", "web"}, []string{web, webDaily}},
		{[]string{"--tag", "web,daily"}, []string{webDaily}},
		{[]string{"--tag", "daily", "--tag", "db"}, []string{webDaily, db}},
		{[]string{"--tag", ""}, []string{plain}},
		{[]string{"--tag", "nope"}, nil},
	} {
		if got := liveIDs(e, tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("points %q: %v, want %v", tc.args, shortIDs(got), shortIDs(tc.want))
		}
	}
	mcRefused(t, e.azfs("points", "--tag", "a b"), "tag")
	mcRefused(t, e.azfs("backup", "--tag", "a,b", src), "tag")

	// azmount: --point selects among the points with the tags; without
	// --point, only those points are served.
	m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "web")), "--tag", "web", "--point", "latest")
	if got, err := readMountFile(filepath.Join(m.dir, src, "n")); err != nil || string(got) != "2" {
		t.Errorf("azmount --tag web --point latest: n = %q, %v; want the newest web point's 2", got, err)
	}
	if code, err := m.stop(os.Interrupt); err != nil || code != 0 {
		t.Errorf("azmount exit %d, %v", code, err)
	}
	m = e.mount(mkdir(t, filepath.Join(t.TempDir(), "db")), "--tag", "db")
	if got := mcNames(t, filepath.Join(m.dir, testMachine)); len(got) != 2 || !slices.Contains(got, "latest") {
		t.Errorf("azmount --tag db serves %q, want one point and latest", got)
	}
	if code, err := m.stop(os.Interrupt); err != nil || code != 0 {
		t.Errorf("azmount exit %d, %v", code, err)
	}
	if msg := mcMountRefused(t, e, "--tag", "nope", "--point", "latest"); !strings.Contains(msg, "nope") {
		t.Errorf("azmount --tag nope: %s, want an error naming the tag", msg)
	}

	// forget: --tag selects the points (also with selectors, among them).
	r := e.mustAzfs("forget", "--tag", "web", "--dry-run")
	if got := forgetLines(r, "forget"); !slices.Equal(got, shortIDs([]string{web, webDaily})) {
		t.Errorf("forget --tag web --dry-run lists %v, want the web points", got)
	}
	r = e.mustAzfs("forget", "--tag", "web", "--dry-run", "latest")
	if got := forgetLines(r, "forget"); !slices.Equal(got, shortIDs([]string{webDaily})) {
		t.Errorf("forget --tag web latest --dry-run lists %v, want the newest web point", got)
	}
	mcRefused(t, e.azfs("forget", "--tag", "web"), "PIN")
	mcRefused(t, e.azfs("forget", "--tag", "nope", "--pin", e.pin()), "nope")
	e.mustAzfs("forget", "--tag", "web", "--pin", e.pin())
	if got := liveIDs(e); !slices.Equal(got, []string{plain, db}) {
		t.Errorf("after forget --tag web: live %v, want %v", shortIDs(got), shortIDs([]string{plain, db}))
	}
	if got := deletedIDs(e.deleted("--tag", "web,daily")); !slices.Equal(got, []string{webDaily}) {
		t.Errorf("points --deleted --tag web,daily: %v, want %v", shortIDs(got), shortIDs([]string{webDaily}))
	}
}
