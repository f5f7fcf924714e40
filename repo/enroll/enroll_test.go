package enroll

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/access"
	"github.com/azfs/azfs/repo/repair"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/azblob"
	"github.com/azfs/azfs/repo/storage/mem"
)

// cheapKDF keeps vault creation fast in tests.
var cheapKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1}

var now = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

const (
	ownerPass = keys.Passphrase("the owner's passphrase, long enough")
	webPass   = keys.Passphrase("web01's own passphrase, long enough")
)

// newVault creates a vault in memory, this host its owner and machine
// "owner", and returns its storage and this host's entry.
func newVault(t *testing.T) (storage.Storage, *keyring.Vault) {
	t.Helper()
	st := mem.New()
	e, err := CreateVault(context.Background(), st, "/srv/vault", ownerPass, cheapKDF, "owner", nil)
	if err != nil {
		t.Fatal(err)
	}
	return st, e
}

// fakeSAS is a blob storage's SAS tokens, as SASStore sees them.
type fakeSAS struct {
	refuse  error
	granted []azblob.Access
	revoked []azblob.Access
}

func (f *fakeSAS) CanGrantSAS() error { return f.refuse }
func (f *fakeSAS) GrantSAS(ctx context.Context, scope string, a azblob.Access, expiry time.Time) (azblob.Grant, error) {
	f.granted = append(f.granted, a)
	return azblob.Grant{Token: "sv=x&sig=y", Expires: expiry.Add(time.Hour)}, nil
}
func (f *fakeSAS) RevokeSAS(ctx context.Context, scope string, access ...azblob.Access) (int, error) {
	f.revoked = append(f.revoked, access...)
	return len(access), nil
}

// TestCreateVault: the owner keys and the first machine, both under the
// one passphrase, and the signed config copies repair rebuilds from.
func TestCreateVault(t *testing.T) {
	ctx := context.Background()
	st, e := newVault(t)
	if e.Owner == nil || e.Keys == nil || e.Machine != "owner" || e.Location != "/srv/vault" || len(e.ID) != 32 {
		t.Fatalf("entry: %+v", e)
	}
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if root.ID != e.ID {
		t.Errorf("root %s, entry %s", root.ID, e.ID)
	}
	if _, err := root.OpenMachine(ctx, "owner", e.Keys); err != nil {
		t.Errorf("open the first machine with its keys: %v", err)
	}
	// The signed copies of the configs are there: repair would write none.
	if _, rep, err := repair.RootConfig(ctx, st, e.Owner, false); err != nil || rep.CopyWritten || rep.State != "sound" {
		t.Errorf("the root config and its signed copy: %+v, %v", rep, err)
	}
	if rep, err := repair.AreaConfig(ctx, root, "owner", e.Owner, false); err != nil || rep.CopyWritten || rep.State != "sound" {
		t.Errorf("the machine's config and its signed copy: %+v, %v", rep, err)
	}
	if _, err := CreateVault(ctx, st, "/srv/vault", ownerPass, cheapKDF, "owner", nil); err == nil || !strings.Contains(err.Error(), "create vault at /srv/vault") {
		t.Errorf("a second vault in the same storage: %v", err)
	}
}

// TestIssueRegisterTakeUpRenew: credentials admit a machine; a
// reinstalled host takes its name up with its passphrase or the owner's,
// not another; a blob vault's credentials carry a SAS token that renews
// the registered machine's storage access.
func TestIssueRegisterTakeUpRenew(t *testing.T) {
	ctx := context.Background()
	st, owner := newVault(t)
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := Issue(ctx, root, owner.Owner, "/srv/vault", nil, access.AccessBackup, time.Hour, now)
	if err != nil || creds.SAS != "" || !creds.SASExpires.IsZero() {
		t.Fatalf("Issue without blob storage: %+v, %v", creds, err)
	}
	if _, err := access.Verify(ctx, st, creds.Credentials, access.AccessBackup, now.Add(time.Minute)); err != nil {
		t.Fatalf("the credentials issued: %v", err)
	}

	web, err := Register(ctx, root, "/srv/vault", "web01", webPass, cheapKDF, nil, creds.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	if web.Machine != "web01" || web.Owner != nil || web.OwnerPublic == nil || !web.OwnerPublic.Equal(owner.Owner.Public()) || web.SAS != "" {
		t.Errorf("a registered machine's entry: %+v", web)
	}
	if _, err := Register(ctx, root, "/srv/vault", "web01", webPass, cheapKDF, nil, creds.Credentials); !errors.Is(err, repo.ErrMachineExists) {
		t.Errorf("registering a taken name: %v, want ErrMachineExists", err)
	}

	for _, pass := range []keys.Passphrase{webPass, ownerPass} {
		ks, err := TakeUp(ctx, root, "web01", func(machine string) (keys.Passphrase, error) {
			if machine != "web01" {
				t.Errorf("asked for the passphrase of %q", machine)
			}
			return pass, nil
		})
		if err != nil {
			t.Errorf("take up web01: %v", err)
			continue
		}
		if _, err := root.OpenMachine(ctx, "web01", ks); err != nil {
			t.Errorf("the key set taken up does not open web01: %v", err)
		}
	}
	_, err = TakeUp(ctx, root, "web01", func(string) (keys.Passphrase, error) { return "neither the machine's nor the owner's", nil })
	if !errors.Is(err, repo.ErrMachineExists) || !strings.Contains(err.Error(), "neither its nor the owner's") {
		t.Errorf("a wrong passphrase: %v", err)
	}

	// A blob vault: the credentials carry a SAS token, which renews web01's.
	sas := &fakeSAS{}
	blob, err := Issue(ctx, root, owner.Owner, "azblob://acct/c", sas, access.AccessBackup, time.Hour, now)
	if err != nil || blob.SAS == "" || !blob.SASExpires.Equal(blob.Expires.Add(time.Hour)) || len(sas.granted) != 1 || sas.granted[0] != azblob.CreateOnly {
		t.Fatalf("Issue on blob storage: %+v, granted %v, %v", blob, sas.granted, err)
	}
	if e := Entry(root.Config, "azblob://acct/c", "web01", web.Keys, blob.Credentials); e.SAS != blob.SAS || !e.SASExpires.Equal(blob.Expires) {
		t.Errorf("an entry admitted by a SAS token: %+v", e)
	}
	if err := Renew(web, creds.Credentials, "/srv/vault", ""); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("renewing with credentials without a SAS token: %v", err)
	}
	if err := Renew(web, blob.Credentials, "azblob://acct/c", "web02"); err == nil || !strings.Contains(err.Error(), "not web02") {
		t.Errorf("renewing under another name: %v", err)
	}
	other := *blob.Credentials
	other.Owner = keys.OwnerPublic{}
	if err := Renew(web, &other, "azblob://acct/c", ""); !errors.Is(err, repo.ErrOwnerMismatch) {
		t.Errorf("renewing with credentials of other owner keys: %v", err)
	}
	if err := Renew(web, blob.Credentials, "azblob://acct/c", "web01"); err != nil || web.SAS != blob.SAS || web.Location != "azblob://acct/c" {
		t.Errorf("renew: %v, entry %+v", err, web)
	}

	// Revoking refuses the SAS tokens first, then the credentials.
	r, err := Revoke(ctx, root, owner.Owner, sas, access.AccessBackup, access.AccessRestore)
	if err != nil || r.Revoked != 2 || len(sas.revoked) != 2 || !r.StorageRefuses || r.VaultID != root.ID || len(r.Access) != 2 {
		t.Errorf("Revoke: %+v, revoked tokens %v, %v", r, sas.revoked, err)
	}
	if _, err := access.Verify(ctx, st, creds.Credentials, access.AccessBackup, now.Add(time.Minute)); err == nil {
		t.Error("revoked credentials still verify")
	}
	// Storage that cannot grant a SAS token: nothing issued.
	refusing := &fakeSAS{refuse: errors.New("no account key")}
	if _, err := Issue(ctx, root, owner.Owner, "azblob://acct/c", refusing, access.AccessRestore, time.Hour, now); err == nil || !strings.Contains(err.Error(), "carry a SAS token") || len(refusing.granted) != 0 {
		t.Errorf("Issue on storage that cannot grant SAS tokens: %v", err)
	}
}

// deleteRefused is storage whose credentials may not delete (a backup SAS
// token).
type deleteRefused struct{ storage.Storage }

func (deleteRefused) Delete(context.Context, string) error { return storage.ErrPermission }

// TestChangePassphrase: the new passphrase opens the machine and the old
// one no longer does; a storage that may not delete refuses before the
// new passphrase is asked or the PIN spent; a wrong PIN changes nothing
// and keeps nothing.
func TestChangePassphrase(t *testing.T) {
	ctx := context.Background()
	st, owner := newVault(t)
	root, err := repo.OpenRoot(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	web, err := Register(ctx, root, "/srv/vault", "web01", webPass, cheapKDF, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const newPass = keys.Passphrase("web01's new passphrase, long enough")
	opens := func(pass keys.Passphrase) bool {
		_, err := TakeUp(ctx, root, "web01", func(string) (keys.Passphrase, error) { return pass, nil })
		return err == nil
	}
	pin, _, err := access.IssuePIN(ctx, root, owner.Owner, now)
	if err != nil {
		t.Fatal(err)
	}
	asked := false
	err = ChangePassphrase(ctx, repo.Root{Storage: deleteRefused{st}, Config: root.Config}, "web01", web.Keys, pin,
		func() (keys.Passphrase, error) { asked = true; return newPass, nil }, func(keys.Passphrase) error { return nil }, cheapKDF, now)
	if !errors.Is(err, storage.ErrPermission) || asked {
		t.Errorf("storage that may not delete: %v (new passphrase asked: %v)", err, asked)
	}
	kept := false
	keep := func(p keys.Passphrase) error { kept = p == newPass; return nil }
	err = ChangePassphrase(ctx, root, "web01", web.Keys, "0000-0000", func() (keys.Passphrase, error) { return newPass, nil }, keep, cheapKDF, now)
	if !errors.Is(err, access.ErrPIN) || kept || !opens(webPass) || opens(newPass) {
		t.Errorf("a wrong PIN: %v, kept %v", err, kept)
	}
	// The PIN refused nothing above: it is still good.
	if err := ChangePassphrase(ctx, root, "web01", web.Keys, pin, func() (keys.Passphrase, error) { return newPass, nil }, keep, cheapKDF, now); err != nil || !kept {
		t.Fatalf("ChangePassphrase: %v, kept %v", err, kept)
	}
	if !opens(newPass) || opens(webPass) {
		t.Errorf("after the change: new opens %v, old opens %v; want only the new", opens(newPass), opens(webPass))
	}
}
