package location

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/storage/smb"
)

// refusing fails every request with ErrPermission, or ErrExists for Save.
type refusing struct{ storage.Storage }

func (refusing) Load(_ context.Context, name string, _, _ int64) ([]byte, error) {
	return nil, &storage.Error{Op: "load", Name: name, Err: storage.ErrPermission}
}

func (refusing) Save(_ context.Context, name string, _ []byte) error {
	return &storage.Error{Op: "save", Name: name, Err: storage.ErrExists}
}

// TestExplained: refused requests say what to do; other errors are left
// as they are.
func TestExplained(t *testing.T) {
	st := explained{Storage: refusing{mem.New()}, hint: "ask the owner for new credentials"}
	_, err := st.Load(context.Background(), "config", 0, -1)
	if !errors.Is(err, storage.ErrPermission) || !strings.HasSuffix(err.Error(), ": ask the owner for new credentials") {
		t.Errorf("refused Load: %v", err)
	}
	err = st.Save(context.Background(), "config", nil)
	if !errors.Is(err, storage.ErrExists) || strings.Contains(err.Error(), "owner") {
		t.Errorf("Save of an existing object: %v, want ErrExists as it was", err)
	}
	if _, err := st.Stat(context.Background(), "missing"); !errors.Is(err, storage.ErrNotFound) || strings.Contains(err.Error(), "owner") {
		t.Errorf("Stat of a missing object: %v, want ErrNotFound as it was", err)
	}
}

// TestKinds: a location is a blob container by its scheme, a share by
// smb:// or a UNC path, else a directory.
func TestKinds(t *testing.T) {
	for _, tc := range []struct {
		location    string
		blob, local bool
	}{
		{"azblob://acct/vault", true, false},
		{"https://acct.blob.core.windows.net/vault", true, false},
		{"http://127.0.0.1:10000/devstoreaccount1/vault", true, false},
		{"smb://backup@nas/share/vault", false, false},
		{`\\nas\share\vault`, false, false},
		{"/srv/vault", false, true},
		{"vault", false, true},
	} {
		if IsBlob(tc.location) != tc.blob || IsLocal(tc.location) != tc.local {
			t.Errorf("%q: IsBlob %v, IsLocal %v; want %v, %v", tc.location, IsBlob(tc.location), IsLocal(tc.location), tc.blob, tc.local)
		}
	}
}

// TestCanonical: a directory becomes its absolute path, a share its smb://
// URL with the user given, a blob container its URL.
func TestCanonical(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ location, user, want string }{
		{"vault", "", filepath.Join(wd, "vault")},
		{"/srv/vault/", "", "/srv/vault"},
		{`\\nas\share\vault`, "backup", "smb://backup@nas/share/vault"},
		{"azblob://acct/vault", "", "https://acct.blob.core.windows.net/vault"},
	} {
		got, err := Canonical(tc.location, tc.user)
		if err != nil || got != tc.want {
			t.Errorf("Canonical(%q, %q) = %q, %v; want %q", tc.location, tc.user, got, err, tc.want)
		}
	}
	if _, err := Canonical(`\\nas`, "backup"); err == nil {
		t.Error(`Canonical(\\nas): no error for a share location without a share`)
	}
}

// TestLocal: Open refuses a missing directory, Create a used one, and what
// Open returns is counted.
func TestLocal(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	if _, name, _, err := Open(missing, Options{}); err == nil || name != missing || !strings.Contains(err.Error(), "no vault at "+missing+": the directory does not exist") {
		t.Errorf("Open of a missing directory: %q, %v", name, err)
	}
	st, name, err := Create(missing, Options{})
	if err != nil || name != missing {
		t.Fatalf("Create: %q, %v", name, err)
	}
	if err := st.Save(context.Background(), "config", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Create(missing, Options{}); err == nil || !strings.Contains(err.Error(), "a vault already exists at "+missing) {
		t.Errorf("Create over a vault: %v", err)
	}
	other := filepath.Join(dir, "other")
	if err := os.MkdirAll(filepath.Join(other, "junk"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Create(other, Options{}); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("Create in a used directory: %v", err)
	}

	var counts storage.Counts
	st, name, container, err := Open(missing, Options{Counts: &counts})
	if err != nil || name != missing || container != nil {
		t.Fatalf("Open: %q, %v, %v", name, container, err)
	}
	if _, err := st.Load(context.Background(), "config", 0, -1); err != nil {
		t.Fatal(err)
	}
	if counts.Tally().Loads != 1 {
		t.Error("Open's storage is not counted")
	}
}

// TestRefuseUsed: a new share vault's directory must hold no object.
func TestRefuseUsed(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	if err := refuseUsed(st, "smb://u@h/s"); err != nil {
		t.Errorf("empty: %v", err)
	}
	if err := st.Save(ctx, "data/x", nil); err != nil {
		t.Fatal(err)
	}
	if err := refuseUsed(st, "smb://u@h/s"); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Errorf("used: %v", err)
	}
	if err := st.Save(ctx, "config", nil); err != nil {
		t.Fatal(err)
	}
	if err := refuseUsed(st, "smb://u@h/s"); err == nil || !strings.Contains(err.Error(), "a vault already exists") {
		t.Errorf("a vault: %v", err)
	}
}

// TestSharePassword: the password comes from Share.Password, whose error
// is returned as it is, before anything is dialled.
func TestSharePassword(t *testing.T) {
	refused := errors.New("no terminal")
	var asked smb.Location
	_, _, _, err := Open(`\\nas\share\vault`, Options{Share: Share{User: "backup", Password: func(loc smb.Location) (string, error) {
		asked = loc
		return "", refused
	}}})
	if !errors.Is(err, refused) || asked.User != "backup" || asked.Host != "nas" {
		t.Errorf("Open: %v, asked for %+v", err, asked)
	}
	if _, _, _, err := Open(`\\nas\share\vault`, Options{Share: Share{User: "backup"}}); !errors.Is(err, errNoPassword) {
		t.Errorf("Open without a password function: %v", err)
	}
}
