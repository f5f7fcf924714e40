package backup_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/storage/mem"
)

// changingResult is what a backup of a changing file gave: the run's
// error, the paths OnChanged named, and the stored node.
type changingResult struct {
	err     error
	changed []string
	size    uint64
	content []byte
	flagged bool
	stat    uint64 // the point's ChangedWhileRead
}

// changingRun backs up a directory holding one 8 MiB file, calling change
// (from the reader, between chunks) after the first chunk of each read of
// it.
func changingRun(t *testing.T, change func(path string, attempt int, firstChunkEnd uint64)) (path string, res changingResult) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "big")
	testfiles.WriteFile(t, path, testfiles.RandomBytes(8<<20, 7))
	var mu sync.Mutex
	last := 0
	defer backup.SetChunkHook(func(p string, attempt int, end uint64) {
		if p != path {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if attempt != last {
			last = attempt
			change(p, attempt, end)
		}
	})()
	v := newVault(t, mem.New())
	p, err := backup.Run(context.Background(), v, backup.Options{Paths: []string{dir}, Machine: "m", Workers: 2,
		OnChanged: func(p string) { mu.Lock(); defer mu.Unlock(); res.changed = append(res.changed, p) },
		OnError:   func(p string, err error) { t.Errorf("OnError(%q, %v)", p, err) },
	})
	if p == nil {
		t.Fatalf("Run = %v, want a committed point", err)
	}
	res.err, res.stat = err, p.Stats.ChangedWhileRead
	r := loaded(t, v)
	n := lookup(t, r, p, path)
	res.size, res.content, res.flagged = n.Size, content(t, r, n), n.Changed
	return path, res
}

// TestFileTruncatedWhileRead: a file truncated while it is read (finding
// 7: stored at its old size with a zero tail) is read again and stored as
// it now is, with no warning: a file that changes once settles.
func TestFileTruncatedWhileRead(t *testing.T) {
	_, res := changingRun(t, func(path string, attempt int, _ uint64) {
		if attempt == 1 {
			if err := os.Truncate(path, 1024); err != nil {
				t.Error(err)
			}
		}
	})
	now := testfiles.RandomBytes(8<<20, 7)[:1024]
	if res.err != nil || len(res.changed) != 0 || res.flagged || res.stat != 0 {
		t.Errorf("Run = %v, OnChanged %q, flag %v, stat %d; want a clean run: the file settled", res.err, res.changed, res.flagged, res.stat)
	}
	if res.size != 1024 || !bytes.Equal(res.content, now) {
		t.Errorf("stored %d bytes (zero tail: %v), want the 1024 the file holds now", res.size, zeroTail(res.content))
	}
}

// TestFileKeepsChangingWhileRead: a file that changes during every read is
// stored as the last read saw it, up to where that read ended (no zeros
// the file never held), marked changed, counted, reported, and the run
// returns ErrPartial.
func TestFileKeepsChangingWhileRead(t *testing.T) {
	var source []byte   // what the file held when the last read started
	var firstEnd uint64 // where that read's first chunk ended
	path, res := changingRun(t, func(path string, attempt int, end uint64) {
		// Each read sees the file shrink to 1 KiB after its first chunk;
		// the next read finds it rewritten at full size.
		if attempt == 1 {
			source = testfiles.RandomBytes(8<<20, 7)
		}
		firstEnd = end
		if err := os.Truncate(path, 1024); err != nil {
			t.Error(err)
		}
		if attempt < 3 {
			next := testfiles.RandomBytes(8<<20, uint64(100+attempt))
			if err := os.WriteFile(path, next, 0o644); err != nil {
				t.Error(err)
			}
			source = next
		}
	})
	if !errors.Is(res.err, backup.ErrPartial) {
		t.Errorf("Run = %v, want ErrPartial", res.err)
	}
	if len(res.changed) != 1 || res.changed[0] != path || !res.flagged || res.stat != 1 {
		t.Errorf("OnChanged %q, flag %v, ChangedWhileRead %d; want %q once, flagged, counted", res.changed, res.flagged, res.stat, path)
	}
	// The reader had read its first chunk and at most one read buffer
	// (64 KiB) beyond it when the file shrank.
	if res.size < firstEnd || res.size > firstEnd+64<<10 || !bytes.Equal(res.content, source[:res.size]) {
		t.Errorf("stored %d bytes (zero tail: %v), want the bytes the last read took from the file: a prefix of its content at least %d long", res.size, zeroTail(res.content), firstEnd)
	}
}

// zeroTail reports whether b ends in a run of 4 KiB or more of zeros.
func zeroTail(b []byte) bool {
	return len(b) >= 4096 && bytes.Equal(b[len(b)-4096:], make([]byte, 4096))
}
