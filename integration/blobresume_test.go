package integration

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/azblob"
)

// TestBlobKillDuringBackup is TestKillDuringBackup on a blob vault: the
// backup killed after packs landed in the container uploads none of them
// again when run anew.
func TestBlobKillDuringBackup(t *testing.T) {
	requireFUSE(t)
	endpoint := startAzurite(t)
	conn := azuriteConn(endpoint)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
	e := newEnv(t)
	e.vault = endpoint + "/vaults/resume"
	e.passFile = filepath.Join(e.dir, "passphrase")
	e.mustAzfs("vault", "create", e.vault, "--generate-passphrase", e.passFile, "--machine", testMachine)

	killAndResume(t, e, blobPacks(t, e.vault, conn, testMachine))
}

// blobPacks returns a function listing the packs of machine's area in the
// blob vault at location, as killAndResume wants.
func blobPacks(t *testing.T, location, conn, machine string) func() map[string]int64 {
	t.Helper()
	loc, err := azblob.ParseLocation(location)
	if err != nil {
		t.Fatal(err)
	}
	st, err := azblob.Open(context.Background(), loc, azblob.Auth{ConnectionString: conn})
	if err != nil {
		t.Fatal(err)
	}
	area := storage.Sub(st, "machines/"+machine+"/")
	return func() map[string]int64 {
		out := make(map[string]int64)
		err := area.List(context.Background(), "data/", func(fi storage.Info) error {
			out[fi.Name] = fi.Size
			return nil
		})
		if err != nil {
			t.Fatalf("list packs: %v", err)
		}
		return out
	}
}
