package location

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/azblob/azuritetest"
	"github.com/azfs/azfs/repo/storage/smb"
	"github.com/azfs/azfs/repo/storage/smb/smbtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, stop := range []func() error{azuritetest.Stop, smbtest.StopShared} {
		if err := stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// TestBlob, on Azurite: a container that does not exist is no vault;
// Create makes it, authenticated by a connection string file; Open returns
// the container, retried and counted; a SAS token the storage refuses says
// what to do.
func TestBlob(t *testing.T) {
	ctx := context.Background()
	endpoint := azuritetest.Endpoint(t)
	conn := filepath.Join(t.TempDir(), "conn")
	if err := os.WriteFile(conn, []byte(azuritetest.ConnString(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	name := "t" + strings.ToLower(rand.Text())
	where := endpoint + "/" + name
	auth := Auth{ConnectionStringFile: conn}

	if _, _, _, err := Open(where, Options{Blob: auth}); err == nil || !strings.Contains(err.Error(), "no vault at "+where+": the container does not exist") {
		t.Errorf("Open of a missing container: %v", err)
	}
	st, created, err := Create(where, Options{Blob: auth})
	if err != nil || created != where {
		t.Fatalf("Create: %q, %v", created, err)
	}
	t.Cleanup(func() {
		c, err := container.NewClientFromConnectionString(azuritetest.ConnString(t), name, nil)
		if err == nil {
			_, err = c.Delete(context.Background(), nil)
		}
		if err != nil {
			t.Errorf("delete container %s: %v", name, err)
		}
	})
	if err := st.Save(ctx, "config", []byte("x")); err != nil {
		t.Fatal(err)
	}

	var counts storage.Counts
	st, opened, container, err := Open(where, Options{Blob: auth, Counts: &counts})
	if err != nil || opened != where || container == nil {
		t.Fatalf("Open: %q, %v, %v", opened, container, err)
	}
	if b, err := st.Load(ctx, "config", 0, -1); err != nil || string(b) != "x" || counts.Tally().Loads != 1 {
		t.Errorf("Load through Open: %q, %v, %+v", b, err, counts.Tally())
	}

	refused := Auth{SAS: "sv=2021-08-06&ss=b&srt=co&sp=r&se=2030-01-01T00:00:00Z&sig=AAAA", Refused: "ask the vault's owner for new credentials"}
	_, _, _, err = Open(where, Options{Blob: refused})
	if !errors.Is(err, storage.ErrPermission) || !strings.Contains(err.Error(), "ask the vault's owner for new credentials") {
		t.Errorf("a refused SAS token: %v, want ErrPermission saying what to do", err)
	}
}

// TestShare, on a real smbd: Create makes a vault's directory on a share
// and refuses one that holds objects, Open logs on with the password
// Share.Password gives, and a refused password or a missing share is one
// line saying so.
func TestShare(t *testing.T) {
	ctx := context.Background()
	srv := smbtest.Shared(t)
	share := srv.NewShare(t)
	where := srv.URL(smbtest.User, share, "vault")
	logon := Share{Password: func(smb.Location) (string, error) { return srv.Password, nil }}

	st, created, err := Create(where, Options{Share: logon})
	if err != nil || created != where {
		t.Fatalf("Create: %q, %v", created, err)
	}
	if err := st.Save(ctx, "data/x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Create(where, Options{Share: logon}); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("Create over objects: %v", err)
	}
	var counts storage.Counts
	st, opened, container, err := Open(where, Options{Share: logon, Counts: &counts})
	if err != nil || opened != where || container != nil {
		t.Fatalf("Open: %q, %v, %v", opened, container, err)
	}
	if b, err := st.Load(ctx, "data/x", 0, -1); err != nil || string(b) != "x" || counts.Tally().Loads != 1 {
		t.Errorf("Load through Open: %q, %v, %+v", b, err, counts.Tally())
	}

	wrong := Share{Password: func(smb.Location) (string, error) { return "not the password", nil }}
	if _, _, _, err := Open(where, Options{Share: wrong}); err == nil || !strings.Contains(err.Error(), "the server refused the password of user "+smbtest.User) {
		t.Errorf("a wrong password: %v", err)
	}
	missing := srv.URL(smbtest.User, "nosuchshare", "")
	if _, _, _, err := Open(missing, Options{Share: logon}); err == nil || !strings.Contains(err.Error(), "no vault at "+missing+": the share or its directory does not exist") {
		t.Errorf("a missing share: %v", err)
	}
}
