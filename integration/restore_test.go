package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// restoreOut is what `azfs restore --json` prints.
type restoreOut struct {
	Point  string `json:"point"`
	Result struct {
		Files          uint64 `json:"files"`
		Dirs           uint64 `json:"dirs"`
		Others         uint64 `json:"others"`
		FilesUnchanged uint64 `json:"files_unchanged"`
		ChunksFetched  uint64 `json:"chunks_fetched"`
		ChunksKept     uint64 `json:"chunks_kept"`
		FilesVerified  uint64 `json:"files_verified"`
		Errors         uint64 `json:"errors"`
	} `json:"result"`
	Storage struct {
		Requests  uint64 `json:"requests"`
		Loads     uint64 `json:"loads"`
		BytesDown uint64 `json:"bytes_down"`
	} `json:"storage"`
}

// restore runs `azfs restore --json` with args, expecting success.
func (e *env) restore(args ...string) restoreOut {
	e.t.Helper()
	r := e.mustAzfs(append([]string{"restore", "--json"}, args...)...)
	var out restoreOut
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("restore --json printed invalid JSON: %v\n%s", err, r)
	}
	return out
}

// TestRestoreAllKinds restores the tree of every kind of entry without a
// mount and holds it, and the mount of the same point, to the source with
// the mount tests' comparison: types, modes, owners, sizes, link counts and
// hard-link groups, mtimes and atimes to the nanosecond, symlink targets,
// content, device numbers, xattrs; the sparse file keeps its holes.
func TestRestoreAllKinds(t *testing.T) {
	requireFUSE(t)
	requireRoot(t)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	buildAllKinds(t, src)
	want := snapshot(t, src)
	e.backup(src)

	target := filepath.Join(t.TempDir(), "target")
	out := e.restore("latest", "--target", target, "--verify")
	if out.Result.Errors != 0 || out.Result.FilesVerified != out.Result.Files || out.Result.Others != 5 {
		t.Errorf("restore result %+v: want no errors, every file verified, 5 others", out.Result)
	}
	restored := filepath.Join(target, src)
	compareTrees(t, "the restored tree", want, snapshot(t, restored), compareOpts{atime: true})
	var sp unix.Stat_t
	if err := unix.Lstat(filepath.Join(restored, "sparse.img"), &sp); err != nil {
		t.Fatal(err)
	}
	if used := sp.Blocks * 512; used > 4<<20 {
		t.Errorf("restored sparse.img uses %d bytes on disk: its holes were written", used)
	}
	mnt := mkdir(t, filepath.Join(e.dir, "mnt"))
	e.mount(mnt, "--point", "latest")
	compareTrees(t, "the mount (beside the restore)", want, snapshot(t, filepath.Join(mnt, src)), compareOpts{atime: true})

	// A path of the point, into another directory.
	sub := filepath.Join(t.TempDir(), "sub")
	e.restore("latest:"+src+"/dir0750", "--target", sub)
	wantSub := snapshot(t, filepath.Join(src, "dir0750"))
	compareTrees(t, "a restored directory", wantSub, snapshot(t, sub), compareOpts{atime: true})

	// Bad input: one line, non-zero exit.
	checkOneLineError(t, e.azfs("restore", "latest:/no/such/path", "--target", sub), "azfs: ")
	checkOneLineError(t, e.azfs("restore", "latest", "--target", sub, "--overwrite", "sometimes"), "azfs: ")
	checkOneLineError(t, e.azfs("restore", "latest"), "azfs: ")
}

// TestRestoreResumesAfterKill kills a restore with SIGKILL part way, runs it
// again, and checks with the storage counts that the second run fetched
// exactly the files the first had not finished: beyond what a third run,
// which has nothing to fetch, loads, it loaded one chunk per such file
// (each file is one chunk of the same size), in at most one request per
// chunk (chunks next to each other in a pack come in one), and not a byte
// more.
func TestRestoreResumesAfterKill(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(t.TempDir(), "src")
	const files = 600
	for i := range 8 {
		mkdir(t, filepath.Join(src, fmt.Sprintf("d%d", i)))
	}
	for i := range files {
		writeRandom(t, filepath.Join(src, fmt.Sprintf("d%d", i%8), fmt.Sprintf("f%03d", i)), 160<<10, uint64(i+1))
	}
	want := snapshot(t, src)
	e.backup(src)

	target := filepath.Join(t.TempDir(), "target")
	cmd := e.command(nil, azfsBin, "restore", "latest", "--target", target, "--workers", "1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if n := countFiles(t, filepath.Join(target, src)); n >= files/5 {
			killed = cmd.Process.Signal(syscall.SIGKILL) == nil
			break
		}
	}
	err := cmd.Wait()
	if !killed || err == nil {
		t.Fatalf("the first restore was not killed part way (it exited: %v); the test cannot measure a resume", err)
	}
	right := 0
	for rel, w := range want {
		if w.typ != unix.S_IFREG {
			continue
		}
		if sha, err := fileSHA(filepath.Join(target, src, rel)); err == nil && sha == w.sha {
			right++
		}
	}
	if right == 0 || right == files {
		t.Fatalf("%d of %d files were right after the kill; the test wants some but not all", right, files)
	}
	second := e.restore("latest", "--target", target)
	compareTrees(t, "the resumed restore", want, snapshot(t, filepath.Join(target, src)), compareOpts{})
	idle := e.restore("latest", "--target", target)
	if idle.Result.ChunksFetched != 0 {
		t.Errorf("a third run fetched %d chunks of a complete restore", idle.Result.ChunksFetched)
	}
	loads := second.Storage.Loads - idle.Storage.Loads
	bytes := second.Storage.BytesDown - idle.Storage.BytesDown
	missing := uint64(files - right)
	t.Logf("after the kill %d of %d files were right; the second run fetched %d chunks in %d loads (%d bytes) beyond an idle run's %d", right, files, second.Result.ChunksFetched, loads, bytes, idle.Storage.Loads)
	// A chunk sealed: its 160 KiB, an encoding byte, the AEAD's nonce and tag.
	if sealed := bytes / missing; loads > missing || bytes%missing != 0 || sealed < 160<<10 || sealed > 160<<10+64 || second.Result.ChunksFetched != missing {
		t.Errorf("the second run loaded %d bytes in %d loads beyond an idle run's and fetched %d chunks; %d files were not right yet (one chunk of 160 KiB each), %d were (nothing right may be fetched again)",
			bytes, loads, second.Result.ChunksFetched, missing, right)
	}
}

// TestRestoreBlobVaultRestoreCredentials: a machine with nothing but restore
// credentials of a blob vault (their SAS may only read and list) and the
// machine's passphrase restores its latest point exactly, and keeps no
// keyring.
func TestRestoreBlobVaultRestoreCredentials(t *testing.T) {
	endpoint := startAzurite(t)
	owner := sasVault(t, endpoint, "restorecreds")
	backupFile := mcCredentials(t, owner, "web01.azcreds")
	web := newEnv(t)
	pass := filepath.Join(web.dir, "passphrase-web01")
	web.mustAzfs("register", "--vault-credentials", backupFile, "--name", "web01", "--generate-passphrase", pass)
	src := filepath.Join(t.TempDir(), "src")
	mcBuildTree(t, src)
	want := snapshot(t, src) // before the backup, whose readlink may update a symlink's atime
	web.backup(src)

	restoreFile := mcCredentials(t, owner, "restore.azcreds", "--access", "restore")
	rescue := newEnv(t)
	target := filepath.Join(t.TempDir(), "target")
	out := rescue.restore("latest", "--target", target, "--vault-credentials", restoreFile, "--machine", "web01", "--passphrase-file", pass, "--verify")
	compareTrees(t, "web01's latest point restored from restore credentials", want, snapshot(t, filepath.Join(target, src)), compareOpts{atime: true})
	if out.Result.Errors != 0 || out.Storage.Requests == 0 {
		t.Errorf("restore from the blob vault: %+v", out)
	}
	mcNoKeyring(t, rescue, "a restore from restore credentials")
}
