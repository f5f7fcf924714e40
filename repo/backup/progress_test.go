package backup_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/storage/mem"
)

// TestProgressInsideFiles: the progress counted a file's bytes only once it
// was finished, so a big file showed 0 B until its end, and named no file
// (issue 14). While a file is read its bytes read so far count as done,
// Current names it, and at the end the count is the file's size, once.
func TestProgressInsideFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big")
	const size = 8 << 20
	writeFile(t, path, randomBytes(size, 14))
	prog := &backup.Progress{}
	var mu sync.Mutex
	var seen []uint64 // BytesDone after each chunk of the file
	var current string
	defer backup.SetChunkHook(func(p string, attempt int, end uint64) {
		if p != path {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, prog.BytesDone.Load())
		if cur := prog.Current.Load(); cur != nil {
			current = *cur
		}
	})()
	v := newVault(t, mem.New())
	if _, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Machine: "m", Progress: prog}); err != nil {
		t.Fatal(err)
	}
	if len(seen) < 2 || seen[0] == 0 || seen[len(seen)-2] >= size || seen[len(seen)-2] <= seen[0] {
		t.Errorf("bytes done after each chunk of the file: %v, want growing from the first chunk on", seen)
	}
	if current != path {
		t.Errorf("Current = %q while reading, want %q", current, path)
	}
	if got := prog.BytesDone.Load(); got != size {
		t.Errorf("bytes done at the end = %d, want the file's %d", got, size)
	}
}
