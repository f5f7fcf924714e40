package backup_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/storage/mem"
)

// TestProgressInsideFiles: the progress counted a file's bytes only once it
// was finished, so a big file showed 0 B until its end, and named no file
// (issue 14). While a file is read its bytes read so far count as done,
// Reading names it with its size and bytes read, and at the end the count
// is the file's size, once, and the bytes stored are counted.
func TestProgressInsideFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big")
	const size = 8 << 20
	testfiles.WriteFile(t, path, testfiles.RandomBytes(size, 14))
	prog := &backup.Progress{}
	var mu sync.Mutex
	var seen []uint64 // BytesDone after each chunk of the file
	var reading []backup.FileRead
	defer backup.SetChunkHook(func(p string, attempt int, end uint64) {
		if p != path {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, prog.BytesDone.Load())
		reading = prog.Reading()
	})()
	v := newVault(t, mem.New())
	if _, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Machine: "m", Progress: prog}); err != nil {
		t.Fatal(err)
	}
	if len(seen) < 2 || seen[0] == 0 || seen[len(seen)-2] >= size || seen[len(seen)-2] <= seen[0] {
		t.Errorf("bytes done after each chunk of the file: %v, want growing from the first chunk on", seen)
	}
	if len(reading) != 1 || reading[0].Path != path || reading[0].Size != size || reading[0].Read != size {
		t.Errorf("Reading after the file's last chunk = %+v, want %s, %d bytes, all read", reading, path, size)
	}
	if got := prog.BytesDone.Load(); got != size {
		t.Errorf("bytes done at the end = %d, want the file's %d", got, size)
	}
	if got := prog.BytesStored(); got < size/2 {
		t.Errorf("bytes stored at the end = %d, want about the (incompressible) file's %d", got, size)
	}
	if r := prog.Reading(); len(r) != 0 {
		t.Errorf("Reading at the end = %+v, want none", r)
	}
}

// TestProgressReadingParallel: with parallel file readers, Reading lists
// every file being read, the largest first (issue 14: the progress named
// only the file read last started).
func TestProgressReadingParallel(t *testing.T) {
	dir := t.TempDir()
	small, big := filepath.Join(dir, "a-small"), filepath.Join(dir, "b-big")
	testfiles.WriteFile(t, small, testfiles.RandomBytes(2<<20, 15))
	testfiles.WriteFile(t, big, testfiles.RandomBytes(4<<20, 16))
	prog := &backup.Progress{}
	var mu sync.Mutex
	var both []backup.FileRead
	// Each reader waits after its file's first chunk until the other has
	// read from its file too (or gives up after a while, and the test fails).
	defer backup.SetChunkHook(func(p string, attempt int, end uint64) {
		mu.Lock()
		seen := both != nil
		mu.Unlock()
		for deadline := time.Now().Add(10 * time.Second); !seen && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if r := prog.Reading(); len(r) == 2 && r[0].Read > 0 && r[1].Read > 0 {
				mu.Lock()
				both = r
				mu.Unlock()
				return
			}
		}
	})()
	v := newVault(t, mem.New())
	if _, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Machine: "m", Progress: prog, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	if len(both) != 2 || both[0].Path != big || both[0].Size != 4<<20 || both[1].Path != small {
		t.Errorf("Reading with two readers = %+v, want %s then %s, both read from", both, big, small)
	}
}
