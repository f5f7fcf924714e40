package repo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage/local"
)

// TestChunkIntoOpensUncompressedInPlace: with an empty buffer whose room
// holds a chunk's sealed bytes (the mount's recycled chunk buffers), an
// uncompressed chunk is read into that room and opened there: its content
// lies in the room after the sealing header, not copied to the buffer's
// start (before, the sealed bytes went to a pooled buffer and the content
// was copied out of it); a compressed one is decoded into the buffer.
func TestChunkIntoOpensUncompressedInPlace(t *testing.T) {
	ctx := context.Background()
	st, err := local.Open(t.TempDir())
	testfiles.Must(t, err)
	v := newVault(t, st)
	random := testfiles.RandomBytes(1<<20, 3)
	text := []byte(strings.Repeat("a chunk that compresses well ", 20000))
	blobs := []testBlob{
		{keys.KindData, v.Keys().ID(keys.KindData, random), random},
		{keys.KindData, v.Keys().ID(keys.KindData, text), text},
	}
	writeBlobs(t, v, blobs)
	v = reopen(t, v)
	for i, b := range blobs {
		room := make([]byte, 0, len(b.plain)+64)
		got, err := v.ChunkInto(ctx, room, b.id)
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if !bytes.Equal(got, b.plain) {
			t.Fatalf("chunk %d: content differs", i)
		}
		end := &room[:cap(room)][cap(room)-1]
		if &got[:cap(got)][cap(got)-1] != end {
			t.Errorf("chunk %d does not lie in the buffer's room", i)
		}
		if atStart := &got[0] == &room[:1][0]; atStart == (i == 0) {
			t.Errorf("chunk %d (uncompressed: %v) starts at the buffer's start: %v", i, i == 0, atStart)
		}
	}
}
