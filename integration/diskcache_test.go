package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// diskCacheLine is what `azmount --debug` logs of its disk cache on exit.
var diskCacheLine = regexp.MustCompile(`msg="disk cache" hits=(\d+) misses=(\d+) stored=(\d+)`)

// diskCacheStats are the counters of one mount's disk cache.
type diskCacheStats struct{ hits, misses, stored int }

// TestBlobVaultDiskCache: a mount of a blob vault keeps what it fetched in
// the disk cache under AZFS_CACHE_DIR; a second mount copies the same file
// from it without fetching a chunk or an index file again; cache files
// damaged between mounts are fetched anew, never served; and the cache
// stays within its bound.
func TestBlobVaultDiskCache(t *testing.T) {
	requireFUSE(t)
	endpoint := startAzurite(t)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", azuriteConn(endpoint))
	e := newEnv(t)
	e.vault = endpoint + "/vaults/" + strings.ToLower(t.Name())
	e.passFile = filepath.Join(e.dir, "passphrase")
	e.mustAzfs("vault", "create", e.vault, "--generate-passphrase", e.passFile, "--machine", testMachine)

	src := filepath.Join(t.TempDir(), "src")
	mkdir(t, filepath.Join(src, "sub"))
	const size = 12 << 20
	want := writeRandom(t, filepath.Join(src, "sub", "big"), size, 7)
	e.backup(src)

	// copyOut mounts the latest point with args, copies the file out with
	// cp -a, checks its content, unmounts and returns the cache's counters.
	copyOut := func(what string, args ...string) diskCacheStats {
		t.Helper()
		m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), append([]string{"--point", "latest", "--debug"}, args...)...)
		dst := filepath.Join(t.TempDir(), "big")
		if out, err := exec.Command("cp", "-a", filepath.Join(m.dir, src, "sub", "big"), dst).CombinedOutput(); err != nil {
			t.Fatalf("%s: cp -a out of the mount: %v\n%s", what, err, out)
		}
		if got, err := fileSHA(dst); err != nil || got != want {
			t.Fatalf("%s: the copy's sha256 is %s (%v), want %s", what, got, err, want)
		}
		if code, err := m.stop(os.Interrupt); err != nil || code != 0 {
			t.Fatalf("%s: azmount exited with %d (%v); stderr:\n%s", what, code, err, m.stderr)
		}
		sm := diskCacheLine.FindStringSubmatch(m.stderr.String())
		if sm == nil {
			t.Fatalf("%s: azmount --debug logged no disk cache counters; stderr:\n%s", what, m.stderr)
		}
		var s diskCacheStats
		s.hits, _ = strconv.Atoi(sm[1])
		s.misses, _ = strconv.Atoi(sm[2])
		s.stored, _ = strconv.Atoi(sm[3])
		t.Logf("%s: disk cache %+v", what, s)
		return s
	}

	cold := copyOut("first mount")
	if cold.misses == 0 || cold.stored == 0 {
		t.Errorf("first mount: %+v, want misses and stored objects", cold)
	}
	dirs, err := filepath.Glob(filepath.Join(e.cacheDir, "*", "blobs-"+testMachine))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("disk cache directories in AZFS_CACHE_DIR: %v (%v), want one <area>/blobs-%s", dirs, err, testMachine)
	}
	cache := dirs[0]
	files, total := cacheFiles(t, cache)
	if len(files) != cold.stored || total < size || total > 4<<30 {
		t.Errorf("after the first mount the cache holds %d files, %d bytes; want the %d stored, over %d bytes and within 4 GiB", len(files), total, cold.stored, size)
	}
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory: %v, %v; want mode 0700", fi.Mode(), err)
	}

	warm := copyOut("second mount")
	if warm.misses != 0 || warm.stored != 0 || warm.hits < len(files) {
		t.Errorf("second mount: %+v; want every object (%d) from the disk cache and nothing fetched", warm, len(files))
	}

	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Every byte: a segment file holds bytes no read needs (of large
		// chunks, read alone, or of a pack's trailer).
		for i := range b {
			b[i] ^= 0x40
		}
		writeFile(t, f, b, 0o600)
	}
	repaired := copyOut("mount over a damaged cache")
	if repaired.stored != len(files) {
		t.Errorf("mount over %d damaged cache files: %+v; want each fetched and stored again", len(files), repaired)
	}

	const bound = 3 << 20
	copyOut("mount with a small disk cache", "--disk-cache", "3MiB")
	if files, total := cacheFiles(t, cache); total > bound {
		t.Errorf("with --disk-cache 3MiB the cache holds %d files, %d bytes", len(files), total)
	}
}

// cacheFiles returns the object files of a disk cache directory and their
// total size.
func cacheFiles(t *testing.T, dir string) ([]string, int64) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	var total int64
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", e.Name(), fi.Mode().Perm())
		}
		files = append(files, filepath.Join(dir, e.Name()))
		total += fi.Size()
	}
	return files, total
}
