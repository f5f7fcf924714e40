package repo_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

// flipInObject inverts the byte at off of the object name (delete and save:
// storages never overwrite).
func flipInObject(t *testing.T, st storage.Storage, name string, off int) {
	t.Helper()
	ctx := context.Background()
	b, err := st.Load(ctx, name, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := st.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, name, b); err != nil {
		t.Fatal(err)
	}
}

// A reused blob whose only copy is damaged: without VerifyReused the
// writer trusts the index; with it, it reads the copy back, remembers it
// as bad, and stores the blob again, after which every reader gets the
// good copy and the damage record marks the bad one.
func TestVerifyReusedStoresDamagedBlobAgain(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	plain := testfiles.RandomBytes(1<<20, 7)
	id := v.Keys().ID(keys.KindData, plain)
	writeBlobs(t, v, []testBlob{{kind: keys.KindData, id: id, plain: plain}})
	loc, _ := v.Index().Lookup(id)
	s := loc.Pack.String()
	flipInObject(t, st, "data/"+s[:2]+"/"+s, int(loc.Offset)+100)

	trusting := reopen(t, v).NewWriter(ctx, 1)
	if stored, err := trusting.Save(ctx, keys.KindData, id, plain); stored || err != nil {
		t.Fatalf("Save without VerifyReused = %v, %v; want the damaged copy trusted (false, nil)", stored, err)
	}

	fresh := reopen(t, v)
	w := fresh.NewWriter(ctx, 1)
	w.VerifyReused()
	if stored, err := w.Save(ctx, keys.KindData, id, plain); !stored || err != nil {
		t.Fatalf("Save with VerifyReused = %v, %v; want the blob stored again", stored, err)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := w.Stats.BlobsStoredAgain.Load(); n != 1 {
		t.Errorf("BlobsStoredAgain = %d, want 1", n)
	}
	if err := fresh.SaveDamage(ctx); err != nil {
		t.Fatal(err)
	}

	after := reopen(t, v)
	if got := after.Index().Locations(id); len(got) != 2 || got[0].Pack == loc.Pack {
		t.Errorf("copies after the heal: %+v; want two, the new one first (the old is remembered as bad)", got)
	}
	if got, err := after.LoadBlob(ctx, keys.KindData, id); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("LoadBlob after the heal: %d bytes, %v", len(got), err)
	}
	if records, err := after.DamageRecords(ctx); err != nil || len(records) != 1 {
		t.Errorf("damage records: %v, %v; want one", records, err)
	}
	// A writer of the healed vault reuses the good copy.
	if stored, err := after.NewWriter(ctx, 1).Save(ctx, keys.KindData, id, plain); stored || err != nil {
		t.Errorf("Save after the heal = %v, %v; want the good copy reused", stored, err)
	}
}

// gatedSaves is a storage whose saves of names under prefix wait, once
// started (reported on started), until release is closed.
type gatedSaves struct {
	storage.Storage
	prefix  string
	started chan struct{}
	release chan struct{}
}

func (g *gatedSaves) Save(ctx context.Context, name string, data []byte) error {
	if strings.HasPrefix(name, g.prefix) {
		g.started <- struct{}{}
		<-g.release
	}
	return g.Storage.Save(ctx, name, data)
}

// TestSaveDamageWaitsForBackgroundSave: a mount saves what its reads find
// bad in the background, and once more when it unmounts, just before the
// process exits. That last SaveDamage must not return while the background
// save of the same finding is still under way: the exit would lose it.
func TestSaveDamageWaitsForBackgroundSave(t *testing.T) {
	ctx := context.Background()
	st := &gatedSaves{Storage: mem.New(), prefix: "damage/", started: make(chan struct{}, 1), release: make(chan struct{})}
	v := newVault(t, st)
	plain := []byte("a chunk found damaged")
	id := v.Keys().ID(keys.KindData, plain)
	writeBlobs(t, v, []testBlob{{kind: keys.KindData, id: id, plain: plain}})
	mount := reopen(t, v)
	mount.SaveDamageAsFound()
	loc, ok := mount.Index().Lookup(id)
	if !ok {
		t.Fatal("the chunk is not indexed")
	}
	mount.NoteBadCopy(id, loc.Pack)
	<-st.started // the background save is under way

	done := make(chan error, 1)
	go func() { done <- mount.SaveDamage(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("SaveDamage returned (%v) while the background save of the finding was still under way", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(st.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := len(names(t, st, "damage/")); n != 1 {
		t.Errorf("%d damage records once SaveDamage returned, want 1", n)
	}
}
