package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of sizeMiB MiB on a new directory dir and
// unmounts it when the test ends. It needs root; on CI it fails when it
// cannot mount, elsewhere it skips.
func mountTmpfs(t *testing.T, dir string, sizeMiB int) string {
	t.Helper()
	requireRoot(t)
	mkdir(t, dir)
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(sizeMiB)+"m,mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		unavailable(t, "mount -t tmpfs: "+err.Error()+": "+strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
			if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
				t.Errorf("umount -l %s: %v\n%s", dir, err, out)
			}
		}
	})
	return dir
}

// fillUp writes zeros to path until its file system is full, then frees
// leave bytes of it again.
func fillUp(t *testing.T, path string, leave int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break // ENOSPC: full
		}
	}
	// Small writes use up the last partial block.
	for {
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
	}
	if leave > 0 {
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(max(fi.Size()-leave, 0)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFullDiskVault: a backup into a vault on a file system too small for
// it fails with one line that says so, commits no point, and leaves the
// vault passing `azfs check` and its earlier point as it was; once the
// filler that took the space is deleted, the next run succeeds, reuses the
// packs that landed, and every stored byte checks. The free space left
// ranges from none to just short of what the run needs, so the disk fills
// while packs, index files or the point are written.
func TestFullDiskVault(t *testing.T) {
	requireFUSE(t)
	base := t.TempDir()
	first, second := filepath.Join(base, "first"), filepath.Join(base, "second")
	mkdir(t, first)
	writeRandom(t, filepath.Join(first, "small"), 3<<20, 1)
	writeFile(t, filepath.Join(first, "note.txt"), []byte("first point\n"), 0o644)
	mkdir(t, filepath.Join(second, "many"))
	writeRandom(t, filepath.Join(second, "big"), 24<<20, 2) // does not compress
	for i := range 300 {
		writeFile(t, filepath.Join(second, "many", strconv.Itoa(i)), randomBytes(3000, uint64(i)), 0o644)
	}
	firstTree, secondTree := snapshot(t, first), snapshot(t, second)

	// setup returns an env whose vault is on a 128 MiB tmpfs and holds one
	// point of first.
	setup := func(t *testing.T) (*env, string, backupOut) {
		e := newEnv(t)
		fsDir := mountTmpfs(t, filepath.Join(e.dir, "vaultfs"), 128)
		e.vault = filepath.Join(fsDir, "vault")
		e.passFile = filepath.Join(e.dir, "passphrase")
		e.mustAzfs("vault", "create", e.vault, "--generate-passphrase", e.passFile, "--machine", testMachine)
		return e, fsDir, e.backup(first)
	}
	// verify mounts point and compares the trees in it with want.
	verify := func(t *testing.T, e *env, point string, want map[string]map[string]*entry) {
		t.Helper()
		m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--point", point)
		for src, tree := range want {
			compareTrees(t, "point "+point[:8]+" "+src, tree, snapshot(t, filepath.Join(m.dir, src)), compareOpts{})
		}
		if code, err := m.stop(os.Interrupt); err != nil || code != 0 {
			t.Fatalf("azmount exited with %d (%v); stderr:\n%s", code, err, m.stderr)
		}
	}

	// What the second backup needs on the vault's file system.
	var need int64
	t.Run("room", func(t *testing.T) {
		e, fsDir, _ := setup(t)
		before := usedBytes(t, fsDir)
		e.backup(first, second)
		need = usedBytes(t, fsDir) - before
		t.Logf("the second backup takes %d bytes", need)
	})
	if need == 0 {
		t.Fatal("could not measure what the second backup takes")
	}

	// Near need the run may just fit (the measure is a few pages over):
	// then it must commit a complete point.
	data := filepath.Join("machines", testMachine, "data")
	for _, leave := range []int64{0, need / 2, need - 4<<20, need - 64<<10, need - 16<<10, need - 12<<10, need - 8<<10, need - 4<<10} {
		t.Run("free "+strconv.FormatInt(leave, 10), func(t *testing.T) {
			e, fsDir, p1 := setup(t)
			filler := filepath.Join(fsDir, "filler")
			fillUp(t, filler, leave)
			dataBefore := sum(vaultFiles(t, e.vault, data))

			r := e.azfs("backup", "--json", first, second)
			if r.code == 0 && leave > need-64<<10 {
				t.Logf("the run fitted: %s", firstLine(r.stderr))
				p2 := parseBackup(t, r)
				e.mustAzfs("check", "--read-data")
				verify(t, e, p2.Point, map[string]map[string]*entry{first: firstTree, second: secondTree})
				return
			}
			checkOneLineError(t, r, "azfs: ")
			if !strings.Contains(r.stderr, "no space") {
				t.Errorf("want the error to mention no space, got:\n%s", r)
			}
			t.Logf("exit %d: %s", r.code, firstLine(r.stderr))
			landed := sum(vaultFiles(t, e.vault, data)) - dataBefore
			t.Logf("data that landed before the disk filled: %d bytes", landed)
			if tmps := tempFiles(t, e.vault); len(tmps) > 0 {
				t.Errorf("the failed backup left temporary files in the vault: %q", tmps)
			}
			if pts := e.points(); len(pts) != 1 || pts[0].ID != p1.Point {
				t.Fatalf("points after the failed backup: %+v; want only %s", pts, p1.Point)
			}
			e.mustAzfs("check")
			verify(t, e, p1.Point, map[string]map[string]*entry{first: firstTree})

			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			p2 := e.backup(first, second)
			if max := need - landed + 1<<20; int64(p2.Storage.BytesUp) > max {
				t.Errorf("the backup once there was room uploaded %d bytes; %d had landed before, so want at most %d", p2.Storage.BytesUp, landed, max)
			}
			if pts := e.points(); len(pts) != 2 {
				t.Fatalf("points after the backup with room: %+v; want 2", pts)
			}
			e.mustAzfs("check", "--read-data")
			verify(t, e, p1.Point, map[string]map[string]*entry{first: firstTree})
			verify(t, e, p2.Point, map[string]map[string]*entry{first: firstTree, second: secondTree})
		})
	}
}

// usedBytes returns the bytes in use on the file system of dir.
func usedBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize
}

// TestFullDiskCache: with AZFS_CACHE_DIR on a file system that is full, or
// fills during the run, backups succeed with a warning (change detection is
// lost, not the run: badger's memory-mapped files once killed the backup
// with SIGBUS), and a mount with a disk cache there serves correct bytes.
func TestFullDiskCache(t *testing.T) {
	requireFUSE(t)
	requireRoot(t) // the tmpfs mounts; before writing 20,000 files
	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, filepath.Join(src, "sub"))
	const nFiles = 20000 // their records fill a few MiB of the file cache
	for i := range nFiles {
		writeFile(t, filepath.Join(src, "sub", "file-with-a-rather-long-name-"+strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644)
	}
	want := writeRandom(t, filepath.Join(src, "big"), 12<<20, 3)
	srcTree := snapshot(t, src)

	// Free space left on a 128 MiB cache file system: the cache does not
	// open (filecache.Reserve is 64 MiB), or opens and fills up.
	for _, leave := range []int64{0, 1 << 20, 32 << 20, 66 << 20} {
		t.Run("backup with "+strconv.FormatInt(leave>>10, 10)+"KiB free", func(t *testing.T) {
			e := newEnv(t)
			e.createVault()
			mountTmpfs(t, e.cacheDir, 128)
			fillUp(t, filepath.Join(e.cacheDir, "filler"), leave)
			for run := range 2 {
				r := e.azfs("backup", "--json", src)
				t.Logf("run %d: exit %d, stderr:\n%s", run, r.code, r.stderr)
				out := parseBackup(t, r)
				if out.Stats.Files != nFiles+1 {
					t.Errorf("run %d: %d files, want %d", run, out.Stats.Files, nFiles+1)
				}
				// Below the reserve the cache never opens; above it, the
				// first run fills it, and the second writes records only
				// for the files the first could not remember, which may
				// fit.
				if (run == 0 || leave < 64<<20) && !strings.Contains(r.stderr, "free") {
					t.Errorf("run %d: want a warning that the cache has no room, got:\n%s", run, r)
				}
				for _, bad := range []string{"panic", "goroutine ", "fatal error"} {
					if strings.Contains(r.stderr, bad) {
						t.Errorf("run %d: output mentions %q:\n%s", run, bad, r)
					}
				}
			}
			if pts := e.points(); len(pts) != 2 {
				t.Errorf("points: %+v, want 2", pts)
			}
			e.mustAzfs("check")
		})
	}

	// A mount's disk cache on a file system that is full from the start, or
	// fills while the 12 MiB file is read; a second mount reads what the
	// first could store.
	for _, leave := range []int64{0, 4 << 20} {
		t.Run("mount with "+strconv.FormatInt(leave>>10, 10)+"KiB free", func(t *testing.T) {
			e := newEnv(t)
			e.createVault()
			e.backup(src)
			mountTmpfs(t, e.cacheDir, 16)
			fillUp(t, filepath.Join(e.cacheDir, "filler"), leave)
			for run := range 2 {
				// An explicit size enables the disk cache for a directory vault.
				m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--point", "latest", "--disk-cache", "64MiB", "--debug")
				for round := range 2 {
					if got, err := fileSHA(filepath.Join(m.dir, src, "big")); err != nil || got != want {
						t.Errorf("mount %d, read %d through a full disk cache: sha256 %s (%v), want %s", run, round, got, err, want)
					}
				}
				compareTrees(t, "the mount over a full cache", srcTree, snapshot(t, filepath.Join(m.dir, src)), compareOpts{})
				if code, err := m.stop(os.Interrupt); err != nil || code != 0 {
					t.Fatalf("azmount exited with %d (%v); stderr:\n%s", code, err, m.stderr)
				}
				sm := diskCacheErrors.FindStringSubmatch(m.stderr.String())
				if sm == nil || sm[1] == "0" {
					t.Errorf("mount %d: want a disk cache that failed to store; stderr:\n%s", run, m.stderr)
				}
				if sm := diskCacheLine.FindStringSubmatch(m.stderr.String()); sm != nil {
					t.Logf("mount %d: disk cache hits %s, misses %s, stored %s", run, sm[1], sm[2], sm[3])
				}
			}
		})
	}
}

// diskCacheErrors is the count of failed stores `azmount --debug` logs of
// its disk cache on exit.
var diskCacheErrors = regexp.MustCompile(`msg="disk cache" .*store_errors=(\d+)`)

// tempFiles returns the temporary files (".tmp-*") under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}
