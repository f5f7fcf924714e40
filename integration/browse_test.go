package integration

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lsEntry is one element of `azfs ls --json` and `azfs find --json`.
type lsEntry struct {
	Point  string    `json:"point"` // find only
	Path   string    `json:"path"`
	Type   string    `json:"type"`
	Mode   uint32    `json:"mode"`
	UID    uint32    `json:"uid"`
	GID    uint32    `json:"gid"`
	Size   int64     `json:"size"`
	MTime  time.Time `json:"mtime"`
	ATime  time.Time `json:"atime"`
	Links  uint64    `json:"links"`
	Target string    `json:"target"`
}

// typeNames are the S_IFMT bits of the entry types azfs prints.
var typeNames = map[string]uint32{"file": unix.S_IFREG, "dir": unix.S_IFDIR, "symlink": unix.S_IFLNK,
	"chardev": unix.S_IFCHR, "blockdev": unix.S_IFBLK, "fifo": unix.S_IFIFO, "socket": unix.S_IFSOCK}

// mountView walks a mount's point directory: every path below it (from
// "/", as azfs prints them) with what snapshot records.
func mountView(t *testing.T, root string) map[string]*entry {
	t.Helper()
	out := map[string]*entry{}
	for rel, e := range snapshot(t, root) {
		if rel != "." {
			out["/"+rel] = e
		}
	}
	return out
}

func decodeJSON[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("invalid JSON: %v\n%s", err, r)
	}
	return v
}

// TestBrowseAgainstMount holds ls, find, diff and dump, which read points
// without mounting them, to what real FUSE mounts of the same two points
// show.
func TestBrowseAgainstMount(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	mcBuildTree(t, src)
	writeFile(t, filepath.Join(src, "docs", "old.txt"), []byte("removed later\n"), 0o644)
	p1 := e.backup(src).Point
	time.Sleep(1100 * time.Millisecond)
	writeFile(t, filepath.Join(src, "docs", "new.txt"), []byte("added\n"), 0o644)
	if err := os.Remove(filepath.Join(src, "docs", "old.txt")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "hello.txt"), []byte("hello, changed\n"), 0o644)
	if err := os.Chmod(filepath.Join(src, "bin", "run.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	p2 := e.backup(src).Point
	m1 := e.mount(mkdir(t, filepath.Join(e.dir, "m1")), "--point", p1)
	m2 := e.mount(mkdir(t, filepath.Join(e.dir, "m2")), "--point", p2)
	view1, view2 := mountView(t, m1.dir), mountView(t, m2.dir)

	// ls --recursive: every entry, with the metadata stat shows in the mount.
	entries := decodeJSON[[]lsEntry](t, e.mustAzfs("ls", p2, "/", "--recursive", "--json"))
	var listed []string
	for _, le := range entries {
		listed = append(listed, le.Path)
		m := view2[le.Path]
		if m == nil {
			t.Errorf("ls lists %q, which the mount does not show", le.Path)
			continue
		}
		if typeNames[le.Type] != m.typ || le.Mode != m.mode || le.UID != m.uid || le.GID != m.gid || le.Links != m.nlink ||
			le.MTime.UnixNano() != m.mtime || le.ATime.UnixNano() != m.atime || le.Target != m.target || m.typ != unix.S_IFDIR && le.Size != m.size {
			t.Errorf("ls: %q is %+v; the mount shows %+v", le.Path, le, *m)
		}
	}
	if want := sortedKeys(view2); !slices.Equal(listed, want) {
		t.Errorf("ls --recursive lists\n%q\nthe mount shows\n%q", listed, want)
	}
	// ls of a directory without --recursive: its entries only; -l lines.
	dir := path.Join(src, "docs")
	entries = decodeJSON[[]lsEntry](t, e.mustAzfs("ls", p2, dir, "--json"))
	names, _ := readDirNames(filepath.Join(m2.dir, dir))
	if len(entries) != len(names) {
		t.Errorf("ls %s: %d entries, the mount lists %d", dir, len(entries), len(names))
	}
	long := e.mustAzfs("ls", p2, dir, "-l").stdout
	if !strings.Contains(long, "lrwxrwxrwx ") || !strings.Contains(long, " -> ../hello.txt") || strings.Count(long, "\n") != len(names) {
		t.Errorf("ls -l %s:\n%s", dir, long)
	}

	// find across both points.
	found := decodeJSON[[]lsEntry](t, e.mustAzfs("find", "*.txt", "--all", "--json"))
	var got, want []string
	for _, f := range found {
		got = append(got, f.Point[:8]+f.Path)
	}
	for id, view := range map[string]map[string]*entry{p1: view1, p2: view2} {
		for p := range view {
			if strings.HasSuffix(p, ".txt") {
				want = append(want, id[:8]+p)
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("find *.txt --all = %q\nthe mounts show %q", got, want)
	}

	// diff: added, removed and changed content as the two mounts differ.
	diff := decodeJSON[diffJSON](t, e.mustAzfs("diff", p1, p2, "--json"))
	var added, removed, content, mode []string
	for _, c := range diff.Changes {
		switch {
		case c.What == "added":
			added = append(added, c.Path)
		case c.What == "removed":
			removed = append(removed, c.Path)
		case c.Content:
			content = append(content, c.Path)
		}
		if slices.Contains(c.Metadata, "mode") {
			mode = append(mode, c.Path)
		}
	}
	var wantAdded, wantRemoved, wantContent, wantMode []string
	for p, b := range view2 {
		a := view1[p]
		switch {
		case a == nil:
			wantAdded = append(wantAdded, p)
		case a.sha != b.sha || a.target != b.target:
			wantContent = append(wantContent, p)
		}
		if a != nil && a.mode != b.mode {
			wantMode = append(wantMode, p)
		}
	}
	for p := range view1 {
		if view2[p] == nil {
			wantRemoved = append(wantRemoved, p)
		}
	}
	for _, l := range [][]string{added, removed, content, mode, wantAdded, wantRemoved, wantContent, wantMode} {
		slices.Sort(l)
	}
	if !slices.Equal(added, wantAdded) || !slices.Equal(removed, wantRemoved) || !slices.Equal(content, wantContent) || !slices.Equal(mode, wantMode) {
		t.Errorf("diff: added %q removed %q content %q mode %q\nthe mounts: added %q removed %q content %q mode %q",
			added, removed, content, mode, wantAdded, wantRemoved, wantContent, wantMode)
	}
	text := e.mustAzfs("diff", p1, p2).stdout
	if !strings.Contains(text, "+ "+src+"/docs/new.txt\n") || !strings.Contains(text, "- "+src+"/docs/old.txt\n") || !strings.Contains(text, "M "+src+"/hello.txt") {
		t.Errorf("diff text:\n%s", text)
	}

	// dump of a file: its bytes; of a directory: a tar archive/tar reads
	// back to what the mount shows.
	file := path.Join(src, "random.bin")
	if out := e.mustAzfs("dump", p2, file).stdout; fmt.Sprintf("%x", sha256.Sum256([]byte(out))) != view2[file].sha {
		t.Errorf("dump %s differs from the mount's file", file)
	}
	tr := tar.NewReader(bytes.NewReader([]byte(e.mustAzfs("dump", p2, src).stdout)))
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("dump as tar: %v", err)
		}
		p := path.Join(path.Dir(src), strings.TrimSuffix(h.Name, "/"))
		seen[p] = true
		m := view2[p]
		if m == nil {
			t.Errorf("the tar holds %q, which the mount does not show", h.Name)
			continue
		}
		if uint32(h.Mode) != m.mode || uint32(h.Uid) != m.uid || uint32(h.Gid) != m.gid || h.ModTime.UnixNano() != m.mtime || h.AccessTime.UnixNano() != m.atime {
			t.Errorf("tar %q: mode %o owner %d:%d mtime %v atime %v; the mount shows %+v", h.Name, h.Mode, h.Uid, h.Gid, h.ModTime, h.AccessTime, *m)
		}
		switch h.Typeflag {
		case tar.TypeReg:
			sum := sha256.New()
			if _, err := io.Copy(sum, tr); err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(sum.Sum(nil)) != m.sha {
				t.Errorf("tar %q: content differs from the mount's", h.Name)
			}
		case tar.TypeSymlink:
			if h.Linkname != m.target {
				t.Errorf("tar %q: symlink to %q, the mount's to %q", h.Name, h.Linkname, m.target)
			}
		case tar.TypeLink:
			first := view2[path.Join(path.Dir(src), h.Linkname)]
			if first == nil || first.ino != m.ino {
				t.Errorf("tar %q: hard link to %q, which is not the same inode in the mount", h.Name, h.Linkname)
			}
		case tar.TypeDir:
		default:
			t.Errorf("tar %q: type %c", h.Name, h.Typeflag)
		}
	}
	for p := range view2 {
		if strings.HasPrefix(p, src) && !seen[p] {
			t.Errorf("%q is in the mount, not in the tar", p)
		}
	}
	checkOneLineError(t, e.azfs("dump", p2, "/no/such"), "azfs: ")
	checkOneLineError(t, e.azfs("ls", "nosuchpoint"), "azfs: ")
}

// diffJSON is what `azfs diff --json` prints.
type diffJSON struct {
	Changes []struct {
		Path     string   `json:"path"`
		What     string   `json:"change"`
		Content  bool     `json:"content"`
		Metadata []string `json:"metadata"`
	} `json:"changes"`
	Stats struct {
		Added    uint64 `json:"added"`
		Removed  uint64 `json:"removed"`
		Modified uint64 `json:"modified"`
	} `json:"stats"`
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
