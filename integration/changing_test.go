package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// readChars returns how many bytes process pid has read so far (rchar of
// /proc/PID/io).
func readChars(pid int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "rchar: "); ok {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no rchar in /proc/%d/io", pid)
}

// storedFile mounts the latest point and returns the content of path in it.
func (e *env) storedFile(t *testing.T, path string) []byte {
	t.Helper()
	mnt := mkdir(t, filepath.Join(t.TempDir(), "mnt"))
	m := e.mount(mnt, "--point", "latest")
	defer m.cleanup()
	b, err := readMountFile(filepath.Join(mnt, path))
	if err != nil {
		t.Fatalf("read %s from the mount: %v", path, err)
	}
	return b
}

// TestFileTruncatedDuringBackup (finding 7): a big file truncated to 1 KiB
// while the backup reads it was stored at its old size with a zero tail.
// Now the backup sees the short read, reads the file again and stores the
// 1 KiB it holds.
func TestFileTruncatedDuringBackup(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(tmpfsDir(t), "src")
	mkdir(t, src)
	big := filepath.Join(src, "big")
	const size = 256 << 20
	writeRandom(t, big, size, 11)

	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := e.command(ctx, azfsBin, "backup", "--json", src)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Truncate once the backup has read 32 MiB of the file.
	truncated := false
	for !truncated {
		n, err := readChars(cmd.Process.Pid)
		if err != nil {
			break // exited already
		}
		if n > 32<<20 {
			if err := os.Truncate(big, 1024); err != nil {
				t.Fatal(err)
			}
			truncated = true
		}
		time.Sleep(time.Millisecond)
	}
	err := cmd.Wait()
	r := result{args: []string{"azfs", "backup", "--json", src}, stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
	if !truncated {
		t.Fatalf("the backup ended before it read 32 MiB of the file (%v):\n%s", err, r)
	}
	out := parseBackup(t, r)
	if r.code != 0 {
		t.Errorf("want exit 0 (the file settled after one change), got:\n%s", r)
	}
	if out.Stats.ChangedWhileRead != 0 {
		t.Errorf("changed_while_read = %d, want 0: the file changed once", out.Stats.ChangedWhileRead)
	}
	got := e.storedFile(t, big)
	if len(got) != 1024 {
		t.Fatalf("the point holds %d bytes of the file (zero tail: %v), want the 1024 it holds after the truncation", len(got), bytes.HasSuffix(got, make([]byte, 4096)))
	}
	if src, err := os.ReadFile(big); err != nil || !bytes.Equal(got, src) {
		t.Errorf("the stored 1 KiB differs from the file's (%v)", err)
	}
}

// TestFileKeepsChangingDuringBackup (finding 7): a file rewritten over and
// over while the backup reads it is stored as the last read saw it, never
// with zeros it did not hold; the backup warns naming it, exits 3, and the
// point counts it.
func TestFileKeepsChangingDuringBackup(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := filepath.Join(tmpfsDir(t), "src")
	mkdir(t, src)
	path := filepath.Join(src, "busy\nlog")
	data := randomBytes(64<<20, 12)
	writeFile(t, path, data, 0o644)

	// The writer truncates the file to half its size and writes it back,
	// the same bytes at the same offsets, again and again: whatever a read
	// sees at an offset is data's byte there, or the end of the file. No
	// state lasts as long as reading it takes (a truncation to 1 KiB would:
	// freeing the pages holds the file at 1 KiB for milliseconds, and a
	// read of 1 KiB rightly settles on that).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			half := len(data) / 2
			_ = f.Truncate(int64(half))
			for off := half; off < len(data); off += 1 << 20 {
				if _, err := f.WriteAt(data[off:min(off+1<<20, len(data))], int64(off)); err != nil {
					t.Error(err)
				}
			}
			f.Close()
		}
	}()
	// A backup may catch the file still between two rewrites on one of its
	// reads (it settles); a few runs make one that sees it change on every
	// read.
	var r result
	runs := 0
	for runs < 5 {
		runs++
		if r = e.azfs("backup", src); r.code != 0 {
			break
		}
	}
	close(stop)
	wg.Wait()
	if r.code != 3 {
		t.Fatalf("want exit 3 (a file kept changing), got:\n%s", r)
	}
	if warn := fmt.Sprintf("azfs: warning: %q kept changing", path); !strings.Contains(r.stderr, warn) {
		t.Errorf("stderr does not name the file (%s):\n%s", warn, r)
	}
	if !strings.Contains(r.stderr, "1 file changed while being read") {
		t.Errorf("the summary does not count the changed file:\n%s", r)
	}
	var rows []struct {
		Partial          bool   `json:"partial"`
		ChangedWhileRead uint64 `json:"changed_while_read"`
	}
	if err := json.Unmarshal([]byte(e.mustAzfs("points", "--json").stdout), &rows); err != nil {
		t.Fatal(err)
	}
	if last := rows[len(rows)-1]; last.ChangedWhileRead != 1 || last.Partial {
		t.Errorf("points --json: last point %+v, want changed_while_read 1, not partial (nothing was skipped)", last)
	}
	if list := e.mustAzfs("points").stdout; !strings.Contains(list, "(1 changed during backup)") {
		t.Errorf("azfs points does not show the changed file:\n%s", list)
	}
	got := e.storedFile(t, path)
	if len(got) == 0 || !bytes.Equal(got, data[:len(got)]) {
		t.Errorf("the point holds %d bytes that are not what the file held there (zero tail: %v)", len(got), bytes.HasSuffix(got, make([]byte, 4096)))
	}
	t.Logf("backups run: %d; the point holds %d of the file's %d bytes", runs, len(got), len(data))
}
