package enroll

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/cert/certtest"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/access"
	"github.com/azfs/azfs/repo/certs"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/storage/location"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/unlock"
)

// hostOpened is the vault root as open.WithCredentials returns it to a new
// host (an empty keyring in a temporary directory) with backup
// credentials the owner issued.
func hostOpened(t *testing.T, root repo.Root, owner *keys.OwnerKeys) (*open.Opened, string) {
	t.Helper()
	creds, err := Issue(context.Background(), root, owner, "/srv/vault", nil, access.AccessBackup, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ring, err := keyring.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &open.Opened{Root: root.Config, Storage: root.Storage, Location: "/srv/vault", Credentials: creds.Credentials, Ring: ring}, dir
}

// saved is the entry of vault id the keyring in dir holds on disk.
func saved(t *testing.T, dir, id string) *keyring.Vault {
	t.Helper()
	ring, err := keyring.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ring.Vaults[id]
}

// TestRegisterHost: a new host is registered and keeps its entry, with the
// owner keys pinned; in certificate mode it encrypts to the owner's
// certificate; a certificate another key planted refuses the registration
// before the passphrase is kept or the machine exists.
func TestRegisterHost(t *testing.T) {
	ctx := context.Background()
	st, e := newVault(t)
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	var kept []keys.Passphrase
	keepPass := func(p keys.Passphrase) error { kept = append(kept, p); return nil }

	o, dir := hostOpened(t, root, e.Owner)
	c, err := RegisterHost(ctx, o, "web01", webPass, cheapKDF, keepPass)
	if err != nil || c != nil || len(kept) != 1 {
		t.Fatalf("RegisterHost in passphrase mode: %v, %v, kept %d", c, err, len(kept))
	}
	got := saved(t, dir, root.ID)
	if got == nil || got.Machine != "web01" || got.Keys == nil || got.Keys.WriteOnly() || got.OwnerPublic == nil || !got.OwnerPublic.Equal(e.Owner.Public()) || o.Entry.Machine != "web01" {
		t.Fatalf("the entry kept: %+v", got)
	}

	ec := certtest.Certificate(t, "ec.crt")
	if err := certs.Add(ctx, st, e.Owner, ec); err != nil {
		t.Fatal(err)
	}
	o, dir = hostOpened(t, root, e.Owner)
	if c, err = RegisterHost(ctx, o, "db01", webPass, cheapKDF, keepPass); err != nil || c == nil || c.ID() != ec.ID() {
		t.Fatalf("RegisterHost in certificate mode: %v, %v", c, err)
	}
	if got := saved(t, dir, root.ID); got == nil || !got.Keys.WriteOnly() || got.Keys.Certificate != ec.ID() {
		t.Errorf("a certificate-mode machine's entry: %+v", got)
	}

	_, forger, err := repo.CreateVault(ctx, mem.New(), ownerPass, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.Add(ctx, st, forger, certtest.Certificate(t, "rsa.crt")); err != nil {
		t.Fatal(err)
	}
	kept = nil
	o, dir = hostOpened(t, root, e.Owner)
	if _, err := RegisterHost(ctx, o, "app01", webPass, cheapKDF, keepPass); !errors.Is(err, repo.ErrDamaged) || kept != nil {
		t.Errorf("with a certificate the owner did not sign: %v, kept %d; want ErrDamaged, nothing kept", err, len(kept))
	}
	if exists, err := root.MachineExists(ctx, "app01"); exists || err != nil {
		t.Errorf("app01 exists after a refused registration: %v, %v", exists, err)
	}
}

// TestTakeUpRenewHost: a reinstalled host takes up its name with its
// passphrase and keeps the entry; a host registered with a blob vault
// renews its SAS token, and only under its own name.
func TestTakeUpRenewHost(t *testing.T) {
	ctx := context.Background()
	st, e := newVault(t)
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := hostOpened(t, root, e.Owner)
	if _, err := RegisterHost(ctx, first, "web01", webPass, cheapKDF, func(keys.Passphrase) error { return nil }); err != nil {
		t.Fatal(err)
	}
	o, dir := hostOpened(t, root, e.Owner)
	wrong := func(string) (keys.Passphrase, error) { return "neither the machine's nor the owner's", nil }
	if err := TakeUpHost(ctx, o, "web01", wrong); !errors.Is(err, repo.ErrMachineExists) || saved(t, dir, root.ID) != nil {
		t.Fatalf("TakeUpHost with a wrong passphrase: %v", err)
	}
	if err := TakeUpHost(ctx, o, "web01", func(string) (keys.Passphrase, error) { return webPass, nil }); err != nil {
		t.Fatal(err)
	}
	if got := saved(t, dir, root.ID); got == nil || got.Machine != "web01" || got.Keys == nil {
		t.Fatalf("the entry kept: %+v", got)
	}

	o.Credentials.SAS, o.Credentials.Expires = "sv=renewed", now.Add(time.Hour)
	if err := RenewHost(o, "db01"); err == nil {
		t.Error("RenewHost under another name")
	}
	if err := RenewHost(o, ""); err != nil {
		t.Fatal(err)
	}
	if got := saved(t, dir, root.ID); got.SAS != "sv=renewed" || !got.SASExpires.Equal(now.Add(time.Hour)) {
		t.Errorf("the entry renewed: SAS %q until %v", got.SAS, got.SASExpires)
	}
}

// TestCreateVaultAt: a vault created in a directory becomes this host's
// default, the passphrase kept before the vault is written; a directory
// in use is refused before the passphrase is kept.
func TestCreateVaultAt(t *testing.T) {
	ctx := context.Background()
	t.Setenv("AZFS_CONFIG_DIR", t.TempDir())
	dir := filepath.Join(t.TempDir(), "vault")
	var kept []keys.Passphrase
	keepPass := func(p keys.Passphrase) error {
		if _, err := os.Stat(filepath.Join(dir, "config")); err == nil {
			t.Error("the passphrase is kept after the vault was written")
		}
		kept = append(kept, p)
		return nil
	}
	e, err := CreateVaultAt(ctx, dir, location.Options{}, ownerPass, cheapKDF, "owner", nil, keepPass)
	if err != nil || len(kept) != 1 || e.Location != dir || e.Owner == nil {
		t.Fatalf("CreateVaultAt: %+v, %v, kept %d", e, err, len(kept))
	}
	configDir, err := keyring.ConfigDir()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := keyring.Load(configDir)
	if err != nil || ring.Default != e.ID || ring.Vaults[e.ID] == nil {
		t.Errorf("keyring after CreateVaultAt: %+v, %v", ring, err)
	}
	if _, err := CreateVaultAt(ctx, dir, location.Options{}, ownerPass, cheapKDF, "owner", nil, keepPass); err == nil || len(kept) != 1 {
		t.Errorf("a directory in use: %v, kept %d", err, len(kept))
	}
}

// TestChangeHostPassphrase: a host not registered with the vault is
// refused before anything is asked; a registered one changes its
// machine's passphrase with the owner's PIN.
func TestChangeHostPassphrase(t *testing.T) {
	ctx := context.Background()
	st, e := newVault(t)
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	asked := false
	newPass := func() (keys.Passphrase, error) { asked = true; return "a new passphrase, long enough", nil }
	keepPass := func(keys.Passphrase) error { return nil }
	o, _ := hostOpened(t, root, e.Owner)
	if err := ChangeHostPassphrase(ctx, o, "0000-0000", newPass, keepPass, cheapKDF, now); err == nil || !strings.Contains(err.Error(), "this machine is not registered") || asked {
		t.Fatalf("an unregistered host: %v (asked %v)", err, asked)
	}
	pin, _, err := access.IssuePIN(ctx, root, e.Owner, now)
	if err != nil {
		t.Fatal(err)
	}
	o.Entry = e
	if err := ChangeHostPassphrase(ctx, o, pin, newPass, keepPass, cheapKDF, now); err != nil || !asked {
		t.Fatalf("ChangeHostPassphrase: %v", err)
	}
	if _, _, err := unlock.Area(ctx, root, "owner", unlock.Keys{Passphrase: func(string) (keys.Passphrase, error) { return "a new passphrase, long enough", nil }}); err != nil {
		t.Errorf("the new passphrase does not open the machine: %v", err)
	}
}
