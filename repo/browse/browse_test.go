package browse_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/browse"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/tree"
)

// vault is a vault in memory whose storage loads are counted.
type vault struct {
	*repo.Area
	counts *storage.Counts
}

func newVault(t *testing.T) *vault {
	t.Helper()
	counts := new(storage.Counts)
	st := storage.Count(mem.New(), counts)
	v, err := repo.Create(context.Background(), st, "correct horse battery staple",
		keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1})
	testfiles.Must(t, err)
	return &vault{Area: v, counts: counts}
}

// backUp backs src up and returns the point, with the vault reopened and
// its index loaded, as a reader sees it.
func (v *vault) backUp(t *testing.T, src string) *repo.Point {
	t.Helper()
	ctx := context.Background()
	p, err := backup.Run(ctx, v.Area, backup.Options{Paths: []string{src}, Machine: "m", Hostname: "h", Workers: 2})
	testfiles.Must(t, err)
	fresh, err := repo.Open(ctx, v.Storage(), v.Keys())
	testfiles.Must(t, err)
	testfiles.Must(t, fresh.LoadIndex(ctx))
	v.Area = fresh
	return p
}

// sourceTree makes a small tree: nested directories, a big file over
// several chunks, a sparse file, hard links, a symlink, a FIFO, an xattr.
func sourceTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	testfiles.WriteFile(t, filepath.Join(src, "docs", "report.odt"), []byte("report"))
	testfiles.WriteFile(t, filepath.Join(src, "docs", "notes.txt"), []byte("notes"))
	testfiles.WriteFile(t, filepath.Join(src, "same", "a", "b.txt"), []byte("unchanged subtree"))
	testfiles.WriteFile(t, filepath.Join(src, "photos", "x.jpg"), []byte("jpeg"))
	big := make([]byte, 6<<20)
	for i := range big {
		big[i] = byte(i * 7 / 5)
	}
	testfiles.Must(t, os.WriteFile(filepath.Join(src, "big.bin"), big, 0o600))
	f, err := os.Create(filepath.Join(src, "sparse"))
	testfiles.Must(t, err)
	testfiles.Must(t, f.Truncate(8<<20))
	_, err = f.WriteAt([]byte("middle"), 4<<20)
	testfiles.Must(t, err)
	testfiles.Must(t, f.Close())
	testfiles.Must(t, os.Link(filepath.Join(src, "docs", "notes.txt"), filepath.Join(src, "notes-link")))
	testfiles.Must(t, os.Symlink("docs/report.odt", filepath.Join(src, "latest")))
	testfiles.Must(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	if err := unix.Setxattr(filepath.Join(src, "docs", "report.odt"), "user.tag", []byte("draft"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		t.Fatal(err)
	}
	return src
}

// backedUp backs up a sourceTree into a new vault.
func backedUp(t *testing.T) (string, *vault, *repo.Point) {
	src := sourceTree(t)
	v := newVault(t)
	return src, v, v.backUp(t, src)
}

func TestLookupAndWalk(t *testing.T) {
	ctx := context.Background()
	src, v, p := backedUp(t)

	n, err := browse.Lookup(ctx, v, p.Root, src+"/docs/report.odt")
	if err != nil || n.Type != tree.File || n.Size != 6 {
		t.Fatalf("Lookup report.odt = %+v, %v", n, err)
	}
	if _, err := browse.Lookup(ctx, v, p.Root, src+"/docs/none"); !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("Lookup of a missing name: %v, want ErrNotExist", err)
	}
	if _, err := browse.Lookup(ctx, v, p.Root, src+"/big.bin/x"); !errors.Is(err, browse.ErrNotDir) {
		t.Errorf("Lookup through a file: %v, want ErrNotDir", err)
	}
	dir, err := browse.Lookup(ctx, v, p.Root, src)
	testfiles.Must(t, err)
	var got []string
	testfiles.Must(t, browse.Walk(ctx, v, "", dir, func(p string, n *tree.Node) error {
		got = append(got, p)
		return nil
	}))
	var want []string
	testfiles.Must(t, filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			rel = ""
		}
		want = append(want, rel)
		return err
	}))
	if !slices.Equal(got, want) {
		t.Errorf("Walk = %q, want %q", got, want)
	}
}

func TestFind(t *testing.T) {
	ctx := context.Background()
	src, v, p := backedUp(t)
	find := func(pattern string, newer, older time.Time) []string {
		q, err := browse.NewQuery(pattern, false)
		testfiles.Must(t, err)
		q.Newer, q.Older = newer, older
		var out []string
		testfiles.Must(t, browse.Find(ctx, v, p.Root, q, func(e browse.Entry) error {
			out = append(out, strings.TrimPrefix(e.Path, src))
			return nil
		}))
		return out
	}
	if got := find("*.txt", time.Time{}, time.Time{}); !slices.Equal(got, []string{"/docs/notes.txt", "/same/a/b.txt"}) {
		t.Errorf("find *.txt = %q", got)
	}
	if got := find(src+"/docs", time.Time{}, time.Time{}); !slices.Equal(got, []string{"/docs"}) {
		t.Errorf("find of an anchored directory = %q (what it holds is not matched)", got)
	}
	if got := find("*.txt", time.Now().Add(time.Hour), time.Time{}); len(got) != 0 {
		t.Errorf("find --newer in an hour = %q", got)
	}
	if got := find("*.txt", time.Time{}, time.Now().Add(-time.Hour)); len(got) != 0 {
		t.Errorf("find --older an hour ago = %q", got)
	}
	if _, err := browse.NewQuery("!x", false); err == nil {
		t.Error("NewQuery accepts a re-include")
	}

	// FindIn: in each point in turn, each entry with its point.
	q, err := browse.NewQuery("notes.txt", false)
	testfiles.Must(t, err)
	var found []browse.Found
	testfiles.Must(t, browse.FindIn(ctx, v, []*repo.Point{p, p}, q, func(f browse.Found) error {
		found = append(found, f)
		return nil
	}))
	if len(found) != 2 || found[1].Point != p.ID.String() || found[1].Machine != p.Machine || !found[1].Time.Equal(p.Time) || found[1].Time.Location() != time.UTC || found[1].Path != src+"/docs/notes.txt" {
		t.Errorf("FindIn in the point twice: %+v", found)
	}
}

func TestDiff(t *testing.T) {
	ctx := context.Background()
	src := sourceTree(t)
	v := newVault(t)
	p1 := v.backUp(t, src)
	testfiles.Must(t, os.Remove(filepath.Join(src, "photos", "x.jpg")))
	testfiles.WriteFile(t, filepath.Join(src, "docs", "new.txt"), []byte("new"))
	testfiles.WriteFile(t, filepath.Join(src, "docs", "report.odt"), []byte("REPORT"))
	testfiles.Must(t, os.Chmod(filepath.Join(src, "big.bin"), 0o644))
	testfiles.Must(t, os.Remove(filepath.Join(src, "latest")))
	testfiles.Must(t, os.Mkdir(filepath.Join(src, "latest"), 0o755))
	p2 := v.backUp(t, src)

	before := v.counts.Tally().Loads
	var got []string
	stats, err := browse.Diff(ctx, v, p1.Root, p2.Root, func(c browse.Change) error {
		if !strings.HasPrefix(c.Path, src+"/") {
			return nil // src itself, whose mtime changed
		}
		line := c.What + " " + strings.TrimPrefix(c.Path, src)
		if c.Content {
			line += " content"
		}
		if len(c.Metadata) > 0 {
			line += " " + strings.Join(c.Metadata, ",")
		}
		got = append(got, line)
		return nil
	})
	testfiles.Must(t, err)
	loads := v.counts.Tally().Loads - before
	want := []string{
		"modified /big.bin mode",
		"modified /docs mtime",
		"added /docs/new.txt",
		"modified /docs/report.odt content mtime",
		"removed /latest",
		"added /latest",
		"modified /photos mtime",
		"removed /photos/x.jpg",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if stats.Added != 2 || stats.Removed != 2 || stats.SubtreesSkipped == 0 {
		t.Errorf("stats %+v: want 2 added, 2 removed, the unchanged subtree skipped", stats)
	}
	// Two roots, and per level of the path to src and in it one part of
	// each point; "same" is never listed.
	if max := uint64(2 + 2*(strings.Count(src, "/")+1) + 2*2); loads > max {
		t.Errorf("Diff made %d loads, want at most %d (unchanged subtrees read?)", loads, max)
	}
}

// TestDumpTar writes the tree as tar and reads it back with archive/tar:
// names, types, modes, times to the nanosecond, owners, content, symlink,
// hard link and xattr as in the source.
func TestDumpTar(t *testing.T) {
	ctx := context.Background()
	src, v, p := backedUp(t)
	var buf bytes.Buffer
	var skipped []string
	testfiles.Must(t, browse.Dump(ctx, v, p.Root, src, browse.Tar, &buf, func(p string) { skipped = append(skipped, p) }))
	tr := tar.NewReader(&buf)
	seen := map[string]bool{}
	links := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		testfiles.Must(t, err)
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "src"), "/")
		seen[name] = true
		path := filepath.Join(src, name)
		var st unix.Stat_t
		testfiles.Must(t, unix.Lstat(path, &st))
		if h.Mode != int64(st.Mode&0o7777) || h.Uid != int(st.Uid) || h.Gid != int(st.Gid) {
			t.Errorf("%q: mode %o owner %d:%d, want %o %d:%d", name, h.Mode, h.Uid, h.Gid, st.Mode&0o7777, st.Uid, st.Gid)
		}
		if !h.ModTime.Equal(time.Unix(st.Mtim.Unix())) {
			t.Errorf("%q: mtime %v, want %v", name, h.ModTime, time.Unix(st.Mtim.Unix()))
		}
		switch h.Typeflag {
		case tar.TypeReg:
			want, _ := os.ReadFile(path)
			got, err := io.ReadAll(tr)
			testfiles.Must(t, err)
			if !bytes.Equal(got, want) {
				t.Errorf("%q: content differs (%d bytes, want %d)", name, len(got), len(want))
			}
		case tar.TypeLink:
			links++
			if name != "/notes-link" || h.Linkname != "src/docs/notes.txt" {
				t.Errorf("%q: hard link to %q", name, h.Linkname)
			}
		case tar.TypeSymlink:
			if target, _ := os.Readlink(path); h.Linkname != target {
				t.Errorf("%q: symlink to %q, want %q", name, h.Linkname, target)
			}
		case tar.TypeDir, tar.TypeFifo:
		default:
			t.Errorf("%q: type %c", name, h.Typeflag)
		}
		if name == "/docs/report.odt" {
			if x, ok := h.PAXRecords["SCHILY.xattr.user.tag"]; !ok || x != "draft" {
				t.Errorf("%q: xattr %q", name, h.PAXRecords)
			}
		}
	}
	testfiles.Must(t, filepath.Walk(src, func(p string, _ os.FileInfo, err error) error {
		name := strings.TrimPrefix(p, src)
		if !seen[name] {
			t.Errorf("%q not in the tar", name)
		}
		return err
	}))
	if len(skipped) != 0 || links != 1 {
		t.Errorf("skipped %q, %d hard links; want none skipped, one link", skipped, links)
	}
}

func TestDumpFileAndZip(t *testing.T) {
	ctx := context.Background()
	src, v, p := backedUp(t)
	for _, name := range []string{"big.bin", "sparse"} {
		var buf bytes.Buffer
		testfiles.Must(t, browse.Dump(ctx, v, p.Root, src+"/"+name, browse.Tar, &buf, nil))
		if want, _ := os.ReadFile(filepath.Join(src, name)); !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("dump of %s: %d bytes differ from the source's %d", name, buf.Len(), len(want))
		}
	}
	var buf bytes.Buffer
	var skipped []string
	testfiles.Must(t, browse.Dump(ctx, v, p.Root, src, browse.Zip, &buf, func(p string) { skipped = append(skipped, p) }))
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	testfiles.Must(t, err)
	for _, f := range zr.File {
		name := strings.TrimSuffix(strings.TrimPrefix(f.Name, "src"), "/")
		if f.Mode().IsRegular() {
			r, err := f.Open()
			testfiles.Must(t, err)
			got, _ := io.ReadAll(r)
			if want, _ := os.ReadFile(filepath.Join(src, name)); !bytes.Equal(got, want) {
				t.Errorf("zip %q: content differs", name)
			}
		}
	}
	if !slices.Equal(skipped, []string{"src/fifo"}) {
		t.Errorf("zip skipped %q, want the FIFO", skipped)
	}
}

func TestStats(t *testing.T) {
	ctx := context.Background()
	src := sourceTree(t)
	v := newVault(t)
	v.backUp(t, src)
	v.backUp(t, src)
	points, err := v.Points(ctx)
	testfiles.Must(t, err)
	m, err := browse.Machine(ctx, "m", v.Storage(), points)
	testfiles.Must(t, err)
	if m.Points != 2 || len(m.Sets) != 1 || m.Sets[0].Points != 2 || m.Bytes != 2*points[0].Stats.Bytes {
		t.Errorf("stats %+v", m)
	}
	if m.DataBytes == 0 || m.StoredBytes <= m.DataBytes || m.DedupRatio < 1.5 {
		t.Errorf("two identical points: stored %d, data %d, dedup %.2f; want dedup near 2", m.StoredBytes, m.DataBytes, m.DedupRatio)
	}
}

// TestEntryLong: ls -l's mode letters (setuid, setgid, sticky with and
// without execute), owners by name or number, a device's numbers, a
// symlink's target, through the quoting function given.
func TestEntryLong(t *testing.T) {
	mtime := tree.Time{Sec: 1_765_000_000}
	for _, c := range []struct {
		node tree.Node
		want string
	}{
		{tree.Node{Type: tree.File, Mode: 0o4755, User: "root", Group: "wheel", Size: 42, Links: 1, MTime: mtime},
			`-rwsr-xr-x   1 root     wheel              42 2025-12-06 05:46:40 "/a b"`},
		{tree.Node{Type: tree.Dir, Mode: 0o3750, UID: 7, GID: 8, MTime: mtime},
			`drwxr-s--T   2 7        8                   0 2025-12-06 05:46:40 "/a b"`},
		{tree.Node{Type: tree.CharDev, Mode: 0o620, Rdev: unix.Mkdev(4, 1), Links: 1, MTime: mtime},
			`crw--w----   1 0        0                 4:1 2025-12-06 05:46:40 "/a b"`},
		{tree.Node{Type: tree.Symlink, Mode: 0o777, Target: "t\n", Links: 1, MTime: mtime},
			`lrwxrwxrwx   1 0        0                   2 2025-12-06 05:46:40 "/a b" -> "t\n"`},
	} {
		quote := func(s string) string {
			if strings.ContainsAny(s, " \n") {
				return strconv.Quote(s)
			}
			return s
		}
		if got := browse.EntryOf("a b", &c.node).Long(quote); got != c.want {
			t.Errorf("Long = %q\n want %q", got, c.want)
		}
	}
}
