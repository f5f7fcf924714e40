package fs

import (
	"bytes"
	"context"
	"encoding/hex"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/browse"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/local"
)

// intoLoads counts the loads of a storage into a new buffer (Load) and
// into the caller's (LoadInto).
type intoLoads struct {
	storage.Storage
	fresh, into atomic.Int64
}

func (s *intoLoads) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	s.fresh.Add(1)
	return s.Storage.Load(ctx, name, off, length)
}

func (s *intoLoads) LoadInto(ctx context.Context, dst []byte, name string, off, length int64) ([]byte, error) {
	s.into.Add(1)
	return storage.LoadInto(ctx, s.Storage, dst, name, off, length)
}

// TestSmallChunkLoadAllocatesItsPlaintextAlone: loading the chunk of a
// small file (below the recycled buffers' sizes, most files of a source
// tree) from a vault directory reads its sealed bytes into a buffer given
// (the source's pooled one, or for a chunk stored uncompressed the
// plaintext's own room), never a new one, and so allocates its plaintext
// and little else. Without a buffer (before) the source read the sealed
// bytes into a new one each time (storage Load): 39,984 bytes per load of
// the compressible file here, 29,104 now (without the race detector, under
// which sync.Pool drops some of what it is given back).
func TestSmallChunkLoadAllocatesItsPlaintextAlone(t *testing.T) {
	ctx := context.Background()
	dir, err := local.Open(t.TempDir())
	testfiles.Must(t, err)
	st := &intoLoads{Storage: dir}
	area, err := repo.Create(ctx, st, "correct horse battery staple", keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1})
	testfiles.Must(t, err)
	src := t.TempDir()
	files := map[string][]byte{
		// Hex text compresses to about half: sealed, about 12 KiB.
		"text.go": []byte(hex.EncodeToString(testfiles.RandomBytes(12<<10, 1))),
		// Stored uncompressed.
		"random.bin": testfiles.RandomBytes(24<<10, 2),
	}
	for name, data := range files {
		testfiles.WriteFile(t, filepath.Join(src, name), data)
	}
	p, err := backup.Run(ctx, area, backup.Options{Paths: []string{src}, Machine: "m", Hostname: "h"})
	testfiles.Must(t, err)
	area, err = repo.Open(ctx, st, area.Keys())
	testfiles.Must(t, err)
	testfiles.Must(t, area.LoadIndex(ctx))
	v := newVault(area, Options{})
	for name, data := range files {
		n, err := browse.Lookup(ctx, area, p.Root, filepath.Join(src, name))
		testfiles.Must(t, err)
		if len(n.Extents) != 1 {
			t.Fatalf("%s: %d chunks, want 1", name, len(n.Extents))
		}
		e := n.Extents[0]
		load := func() {
			c, err := v.chunkLoader(e)(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.data, data) {
				t.Fatalf("%s: the chunk differs from the file", name)
			}
			c.unpin(v.free)
		}
		st.fresh.Store(0)
		perLoad := testfiles.BytesAllocated(50, load)
		t.Logf("%s: %d bytes, %d allocated per load", name, len(data), perLoad)
		if n := st.fresh.Load(); n != 0 {
			t.Errorf("%s: %d of 51 loads read the sealed bytes into a new buffer, want none", name, n)
		}
	}
}
