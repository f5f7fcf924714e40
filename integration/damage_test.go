package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDamagedPackEIO flips one byte in the middle of a data pack: reading a
// file that needs the damaged chunk fails with EIO, every other file reads
// back intact, and check --read-data names exactly the damaged files.
func TestDamagedPackEIO(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, filepath.Join(src, "small"))
	// A first point holds A.bin alone: 20 MiB of ~1 MiB chunks fill one
	// 16 MiB pack, the biggest of the vault, and part of another. The second
	// point adds 300 single-chunk files, about 14 MiB, in a pack of their
	// own. Every chunk is unique.
	want := map[string]string{"A.bin": writeRandom(t, filepath.Join(src, "A.bin"), 20<<20, 100)}
	e.backup(src)
	for i := range 300 {
		rel := fmt.Sprintf("small/%03d.bin", i)
		want[rel] = writeRandom(t, filepath.Join(src, rel), 48<<10, uint64(1000+i))
	}
	out := e.backup(src)

	packs := vaultFiles(t, e.area(), "data")
	if len(packs) < 4 {
		t.Fatalf("want at least 4 packs (3 of data, trees), got %d: %v", len(packs), packs)
	}
	var victim string
	for name, size := range packs {
		if victim == "" || size > packs[victim] {
			victim = name
		}
	}
	flipByte(t, filepath.Join(e.area(), victim), packs[victim]/2)
	t.Logf("flipped the byte at offset %d of %s (%d bytes)", packs[victim]/2, victim, packs[victim])

	// A structure check reads trailers, not blobs: the damage is inside a
	// blob, so it passes. Recorded, not a requirement of the format.
	if r := e.azfs("check"); r.code != 0 {
		t.Errorf("check (structure only) after damaging a blob's middle: exit %d; it does not read blobs, so 0 was expected\n%s", r.code, r)
	} else {
		t.Logf("check (structure only) passes despite the damaged blob: %s", strings.TrimSpace(r.stderr))
	}

	r := e.azfs("check", "--read-data")
	if r.code != 1 {
		t.Errorf("check --read-data: exit %d, want 1\n%s", r.code, r)
	}
	checked := damagedFiles(t, r, out.Point[:8], src)
	if len(checked) == 0 {
		t.Errorf("check --read-data names no damaged file:\n%s", r)
	}
	for rel := range checked {
		if _, ok := want[rel]; !ok {
			t.Errorf("check --read-data names %q, which is not a backed-up file", rel)
		}
	}

	m := e.mount(mkdir(t, filepath.Join(e.dir, "mnt")), "--point", "latest")
	inMount := filepath.Join(m.dir, src)
	eio := make(map[string]bool)
	for rel, sha := range want {
		b, err := readMountFile(filepath.Join(inMount, rel))
		switch {
		case isEIO(err):
			eio[rel] = true
		case err != nil:
			t.Errorf("read %s from the mount: %v, want EIO or its content", rel, err)
		case shaOf(b) != sha:
			t.Errorf("read %s from the mount: wrong content without an error (sha256 %s, want %s)", rel, shaOf(b), sha)
		}
	}
	if len(eio) == 0 {
		t.Errorf("no file of the mount gives EIO after damaging pack %s", victim)
	}
	if !equalSets(eio, map[string]bool{"A.bin": true}) {
		t.Errorf("files giving EIO in the mount: %v, want only A.bin, the only file with chunks in the damaged pack", keys(eio))
	}
	if !equalSets(eio, checked) {
		t.Errorf("files giving EIO in the mount %v differ from the files check --read-data names %v", keys(eio), keys(checked))
	}
	t.Logf("files giving EIO: %v", keys(eio))
	for rel := range eio {
		checkPartialReads(t, filepath.Join(inMount, rel), filepath.Join(src, rel))
	}
	if !m.waitStderr("damaged chunk") {
		t.Errorf("azmount logged no \"damaged chunk\" line; stderr:\n%s", m.stderr)
	}

	// Reading a damaged file again gives EIO again (no bad data cached).
	for rel := range eio {
		if _, err := readMountFile(filepath.Join(inMount, rel)); !errors.Is(err, syscall.EIO) {
			t.Errorf("second read of %s: %v, want EIO", rel, err)
		}
		break
	}
}

// checkPartialReads reads a damaged file of the mount piece by piece: each
// piece gives its content or EIO, never wrong bytes, and in a file of 8 MiB
// or more the pieces far from the damage (one chunk of at most 4 MiB, plus
// the kernel's read-ahead) read back.
func checkPartialReads(t *testing.T, path, srcPath string) {
	t.Helper()
	want, err := os.ReadFile(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const piece = 256 << 10
	good, bad := 0, 0
	buf := make([]byte, piece)
	for off := 0; off < len(want); off += piece {
		n, err := f.ReadAt(buf, int64(off))
		switch {
		case isEIO(err):
			bad++
		case err != nil && !(errors.Is(err, io.EOF) && off+n == len(want)):
			t.Errorf("%s: read at %d: %v, want data or EIO", path, off, err)
		case !bytes.Equal(buf[:n], want[off:off+n]):
			t.Errorf("%s: read at %d returned wrong bytes without an error", path, off)
		default:
			good++
		}
	}
	t.Logf("%s: %d pieces of %d KiB read back, %d gave EIO", filepath.Base(path), good, piece>>10, bad)
	if bad == 0 {
		t.Errorf("%s: every piece read back although reading the whole file gave EIO", path)
	}
	if len(want) >= 8<<20 && good == 0 {
		t.Errorf("%s: no piece of a %d-byte file read back: damage to one chunk makes the whole file unreadable", path, len(want))
	}
}

// flipByte inverts the byte at off of the file at path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// damagedFiles parses the `damaged: file "<id8>:<path>": ...` lines of a
// check and returns the named files of point id8 relative to src.
func damagedFiles(t *testing.T, r result, id8, src string) map[string]bool {
	t.Helper()
	out := make(map[string]bool)
	for _, line := range r.stderrLines() {
		rest, ok := strings.CutPrefix(line, "damaged: file ")
		if !ok {
			continue
		}
		quoted, err := strconv.QuotedPrefix(rest)
		name, uerr := strconv.Unquote(quoted)
		if err != nil || uerr != nil {
			t.Errorf("check: file name not quoted in %q", line)
			continue
		}
		path, ok := strings.CutPrefix(name, id8+":")
		if !ok {
			continue
		}
		path = "/" + strings.TrimPrefix(path, "/")
		rel, err := filepath.Rel(src, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("check names %q, outside the backed-up %s", path, src)
			continue
		}
		out[rel] = true
	}
	return out
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestKillDuringBackup kills a backup after its first pack has landed: the
// vault stays consistent and without a point, and the next backup reuses
// the landed packs instead of storing their data again.
func TestKillDuringBackup(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	killAndResume(t, e, func() map[string]int64 { return vaultFiles(t, e.area(), "data") })
}

// killAndResume kills a backup of incompressible files into e's vault once
// packs (listed by packs) have landed, then checks the next run resumes.
func killAndResume(t *testing.T, e *env, packs func() map[string]int64) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, src)
	want := writeRandomFiles(t, src, 6, 50<<20, 200)
	total := int64(6 * 50 << 20)

	cmd, stderr, done := backupUntilPack(t, e, src, packs)
	_ = cmd.Process.Kill() // our own child, by its PID
	if err := <-done; err == nil {
		t.Fatalf("the backup completed before SIGKILL; stderr:\n%s", stderr)
	}
	landed := packs() // packs that landed before the kill
	landedBytes := sum(landed)
	t.Logf("killed the backup with %d pack(s) (%d bytes) landed", len(landed), landedBytes)

	if r := e.azfs("check"); r.code != 0 {
		t.Errorf("check after the kill: exit %d, want 0\n%s", r.code, r)
	}
	if pts := e.points(); len(pts) != 0 {
		t.Errorf("points after the killed backup: %+v, want none", pts)
	}

	out := e.backup(src)
	s := out.Stats
	if s.Bytes != uint64(total) {
		t.Errorf("backup: bytes %d, want %d", s.Bytes, total)
	}
	// Metadata, seal and trailer overheads fit in slack; storing the landed
	// packs' data again would not.
	const slack = 1 << 20
	if s.BytesStored+uint64(landedBytes) > uint64(total)+slack {
		t.Errorf("backup after the kill stored %d bytes; with %d bytes of packs already landed it should store at most %d (total %d - landed + %d slack): landed packs not reused",
			s.BytesStored, landedBytes, total-landedBytes+slack, total, slack)
	}
	// What went over the wire, counted per request, agrees.
	if up := out.Storage.BytesUp; up+uint64(landedBytes) > uint64(total)+slack {
		t.Errorf("backup after the kill uploaded %d bytes in %d saves; at most %d should be new", up, out.Storage.Saves, total-landedBytes+slack)
	}
	after := packs()
	for name := range landed {
		if _, ok := after[name]; !ok {
			t.Errorf("pack %s that landed before the kill is gone", name)
		}
	}
	if all := sum(after); all > total+slack {
		t.Errorf("the vault holds %d bytes of packs for %d bytes of incompressible data: data stored twice", all, total)
	}
	if pts := e.points(); len(pts) != 1 || pts[0].ID != out.Point || pts[0].Partial {
		t.Errorf("points: %+v, want only %s, complete", pts, out.Point)
	}
	if r := e.azfs("check", "--read-data"); r.code != 0 {
		t.Errorf("check --read-data: exit %d, want 0\n%s", r.code, r)
	}

	m := e.mount(mkdir(t, filepath.Join(e.dir, "mnt")), "--point", "latest")
	for name, sha := range want {
		got, err := fileSHA(filepath.Join(m.dir, src, name))
		if err != nil || got != sha {
			t.Errorf("%s in the mount: sha256 %s (err %v), want %s", name, got, err, sha)
		}
	}
}

// writeRandomFiles writes n files of size random bytes into dir, named
// f0.bin, f1.bin, ..., file i from seed+i, and returns their SHA-256 by name.
func writeRandomFiles(t *testing.T, dir string, n int, size int64, seed uint64) map[string]string {
	t.Helper()
	want := make(map[string]string)
	for i := range n {
		name := fmt.Sprintf("f%d.bin", i)
		want[name] = writeRandom(t, filepath.Join(dir, name), size, seed+uint64(i))
	}
	return want
}

// backupUntilPack starts `azfs backup --json src` and returns once a pack
// of it has landed (packs lists them): the running command, its stderr,
// and a channel of its end. It fails the test if the backup ends first.
func backupUntilPack(t *testing.T, e *env, src string, packs func() map[string]int64) (*exec.Cmd, *syncBuffer, <-chan error) {
	t.Helper()
	cmd := e.command(nil, azfsBin, "backup", "--json", src)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if waitForPack(t, packs, done) == nil {
		t.Fatalf("the backup finished before a pack landed: make the source bigger; stderr:\n%s", stderr)
	}
	return cmd, stderr, done
}

// waitForPack polls packs until a pack has landed and returns the packs,
// or returns nil if done reports the process's end first.
func waitForPack(t *testing.T, packs func() map[string]int64, done <-chan error) map[string]int64 {
	t.Helper()
	deadline := time.Now().Add(cmdTimeout)
	for time.Now().Before(deadline) {
		found := packs()
		for name := range found {
			if isHex64(filepath.Base(name)) {
				return found
			}
		}
		select {
		case err := <-done:
			t.Logf("backup exited (%v) before a pack was seen", err)
			return nil
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("no pack landed within %v", cmdTimeout)
	return nil
}
