package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo/access"
)

// Vault credentials of a blob vault carry a SAS token that the storage
// (Azurite) enforces: what it allows, its expiry and its revocation. Every
// machine but the owner's runs without a connection string.

// sasVault creates a blob vault in container (of the Azurite at endpoint)
// below the prefix "vault", owned by a new env that alone holds the
// account's connection string; the test process's own is emptied so that
// no other env inherits one.
func sasVault(t *testing.T, endpoint, container string, create ...string) *env {
	t.Helper()
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	owner := newEnv(t)
	owner.extraEnv = []string{"AZURE_STORAGE_CONNECTION_STRING=" + azuriteConn(endpoint)}
	owner.vault = endpoint + "/" + container + "/vault"
	owner.passFile = filepath.Join(owner.dir, "passphrase")
	owner.mustAzfs(append([]string{"vault", "create", owner.vault, "--generate-passphrase", owner.passFile, "--machine", testMachine}, create...)...)
	return owner
}

// sasOf returns the parsed credentials file, checking it carries a SAS.
func sasOf(t *testing.T, file string) *access.Credentials {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := access.ParseCredentials(b)
	if err != nil {
		t.Fatalf("credentials %s: %v", file, err)
	}
	if c.SAS == "" {
		t.Fatalf("credentials %s of a blob vault carry no SAS token:\n%s", file, b)
	}
	return c
}

// rawClient is an SDK client of the vault's container authenticated by
// sas alone, to make requests that azfs never makes; it does not retry.
func rawClient(t *testing.T, endpoint, containerName, sas string) *container.Client {
	t.Helper()
	c, err := container.NewClientWithNoCredential(endpoint+"/"+containerName+"?"+sas, &container.ClientOptions{
		ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// download reads a blob with c.
func download(c *container.Client, name string) ([]byte, error) {
	resp, err := c.NewBlobClient(name).DownloadStream(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return b.Bytes(), err
}

// storageRefused checks that the service refused a request with one of
// codes.
func storageRefused(t *testing.T, what string, err error, codes ...bloberror.Code) {
	t.Helper()
	if !bloberror.HasCode(err, codes...) {
		t.Errorf("%s: %v, want the storage to refuse it with %v", what, err, codes)
	}
}

// TestBlobVaultCredentials: backup credentials of a blob vault register a
// machine that has no connection string; it backs up, checks and mounts
// with their SAS token (kept in its 0600 keyring), which the storage
// refuses every delete and overwrite; restore credentials cannot save; a third machine recovers
// from restore credentials and the passphrase alone (points, mount,
// compare); revocation cuts every token off at once, and new credentials
// renew a registered machine's access.
func TestBlobVaultCredentials(t *testing.T) {
	requireFUSE(t)
	endpoint := startAzurite(t)
	owner := sasVault(t, endpoint, "sascreds")
	ctx := context.Background()

	backupFile := mcCredentials(t, owner, "web01.azcreds")
	backupCreds := sasOf(t, backupFile)
	web := newEnv(t)
	pass := filepath.Join(web.dir, "passphrase-web01")
	web.mustAzfs("register", "--vault-credentials", backupFile, "--name", "web01", "--generate-passphrase", pass)
	mcCheckSecretFile(t, "keyring of web01", mcKeyring(web), 0)
	ring, err := keyring.Load(web.cfgDir)
	if err != nil {
		t.Fatal(err)
	}
	entry := ring.Vaults[backupCreds.VaultID]
	if entry == nil || entry.SAS != backupCreds.SAS || !entry.SASExpires.Equal(backupCreds.Expires) {
		t.Fatalf("web01's keyring entry %+v does not hold the credentials' SAS token and expiry", entry)
	}

	src := filepath.Join(t.TempDir(), "src")
	mcBuildTree(t, src)
	web.backup(src)
	want := snapshot(t, src)
	// The second backup saves tree parts and index entries that exist
	// already: a SAS that may not overwrite must not fail it.
	second := web.backup(src)
	if second.Stats.BytesRead != 0 {
		t.Errorf("second backup read %d bytes of an unchanged tree", second.Stats.BytesRead)
	}
	web.mustAzfs("check", "--read-data")
	if rows := web.points(); len(rows) != 2 || rows[1].ID != second.Point {
		t.Errorf("web01's points: %+v, want its two", rows)
	}
	own := web.mount(mkdir(t, filepath.Join(t.TempDir(), "own")), "--point", "latest")
	compareTrees(t, "web01's latest point mounted with its keyring's SAS token", want, snapshot(t, filepath.Join(own.dir, src)), compareOpts{atime: true})
	if code, err := own.stop(os.Interrupt); err != nil || code != 0 {
		t.Errorf("azmount exit %d, %v", code, err)
	}

	// The storage refuses the backup token every delete and overwrite.
	raw := rawClient(t, endpoint, "sascreds", string(backupCreds.SAS))
	var pointBlob string
	pager := raw.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: to.Ptr("vault/machines/web01/points/")})
	for pager.More() && pointBlob == "" {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("list with the backup token: %v", err)
		}
		if len(page.Segment.BlobItems) > 0 {
			pointBlob = *page.Segment.BlobItems[0].Name
		}
	}
	if pointBlob == "" {
		t.Fatal("the backup token lists no point of web01")
	}
	stored, err := download(raw, pointBlob)
	if err != nil {
		t.Fatalf("read a point with the backup token: %v", err)
	}
	for _, name := range []string{pointBlob, "vault/config", "vault/machines/web01/config"} {
		_, err := raw.NewBlobClient(name).Delete(ctx, nil)
		storageRefused(t, "delete "+name+" with the backup token", err, bloberror.AuthorizationPermissionMismatch)
		_, err = raw.NewBlockBlobClient(name).UploadBuffer(ctx, []byte("overwritten"), nil)
		storageRefused(t, "overwrite "+name+" with the backup token", err, bloberror.AuthorizationPermissionMismatch)
	}
	if _, err := raw.Delete(ctx, nil); !bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch) {
		t.Errorf("delete the container with the backup token: %v, want it refused", err)
	}
	ownerRaw, err := container.NewClientFromConnectionString(azuriteConn(endpoint), "sascreds", nil)
	if err != nil {
		t.Fatal(err)
	}
	if after, err := download(ownerRaw, pointBlob); err != nil || !bytes.Equal(after, stored) {
		t.Errorf("the point blob after the backup token's attempts: %v (changed: %v)", err, !bytes.Equal(after, stored))
	}

	// Restore credentials: the storage refuses their token any save, and
	// azfs refuses to register with them.
	restoreFile := mcCredentials(t, owner, "restore.azcreds", "--access", "restore")
	restoreCreds := sasOf(t, restoreFile)
	_, err = rawClient(t, endpoint, "sascreds", string(restoreCreds.SAS)).NewBlockBlobClient("vault/machines/web01/points/new").UploadBuffer(ctx, []byte("x"), nil)
	storageRefused(t, "save with the restore token", err, bloberror.AuthorizationPermissionMismatch)
	intruder := newEnv(t)
	mcRefused(t, intruder.azfs("register", "--vault-credentials", restoreFile, "--name", "intruder", "--generate-passphrase", filepath.Join(intruder.dir, "p")), "restore credentials do not allow backup")

	// A third machine recovers web01's points from the restore credentials
	// and web01's passphrase alone, and keeps nothing.
	rescue := newEnv(t)
	rows := mcMustPoints(t, rescue, restoreFile, "web01", pass)
	if len(rows) != 2 || rows[1].ID != second.Point {
		t.Errorf("points of web01 from the restore credentials: %+v, want its two", rows)
	}
	m := rescue.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--vault-credentials", restoreFile, "--machine", "web01", "--passphrase-file", pass, "--point", "latest")
	compareTrees(t, "web01's latest point mounted from restore credentials", want, snapshot(t, filepath.Join(m.dir, src)), compareOpts{atime: true})
	if code, err := m.stop(os.Interrupt); err != nil || code != 0 {
		t.Errorf("azmount exit %d, %v", code, err)
	}
	mcNoKeyring(t, rescue, "recovery from restore credentials")

	// Revocation: the storage refuses every token at once.
	r := owner.mustAzfs("vault", "credentials", "revoke")
	if !strings.Contains(r.stderr, "backup and restore") {
		t.Errorf("revoke: want it to say what it revoked, got:\n%s", r)
	}
	for what, sas := range map[string]string{"backup": string(backupCreds.SAS), "restore": string(restoreCreds.SAS)} {
		_, err := download(rawClient(t, endpoint, "sascreds", sas), pointBlob)
		storageRefused(t, "read with the revoked "+what+" token", err, bloberror.AuthorizationFailure)
	}
	mcRefused(t, web.azfs("backup", "--json", src), "403", "azfs register --vault-credentials")
	mcRefused(t, mcPoints(rescue, restoreFile, "web01", pass), "403")

	// New backup credentials renew web01's access; its keys and points are
	// as they were, and the revoked token stays refused.
	renewFile := mcCredentials(t, owner, "renew.azcreds")
	renew := sasOf(t, renewFile)
	if policyOf(renew.SAS) == policyOf(backupCreds.SAS) {
		t.Errorf("credentials issued after the revocation name the revoked policy %s", policyOf(renew.SAS))
	}
	web.mustAzfs("register", "--vault-credentials", renewFile)
	third := web.backup(src)
	if rows := web.points(); len(rows) != 3 || rows[2].ID != third.Point {
		t.Errorf("web01's points after renewal: %+v", rows)
	}
	_, err = download(raw, pointBlob)
	storageRefused(t, "read with the revoked backup token after renewal", err, bloberror.AuthorizationFailure)
}

// policyOf returns the stored access policy a SAS token names.
func policyOf[S ~string](sas S) string {
	for _, kv := range strings.Split(string(sas), "&") {
		if v, ok := strings.CutPrefix(kv, "si="); ok {
			return v
		}
	}
	return ""
}

// TestBlobVaultCredentialsExpire: credentials issued for a few seconds are
// refused by the storage once they expire, and by azfs.
func TestBlobVaultCredentialsExpire(t *testing.T) {
	endpoint := startAzurite(t)
	owner := sasVault(t, endpoint, "sasexpiry")
	file := mcCredentials(t, owner, "short.azcreds", "--access", "restore", "--valid", "10s") // long enough for an Argon2id unlock on a loaded machine
	creds := sasOf(t, file)
	raw := rawClient(t, endpoint, "sasexpiry", string(creds.SAS))
	if _, err := download(raw, "vault/config"); err != nil {
		t.Fatalf("read with the new token: %v", err)
	}
	rescue := newEnv(t)
	mcMustPoints(t, rescue, file, testMachine, owner.passFile)

	time.Sleep(time.Until(creds.Expires.Add(1100 * time.Millisecond)))
	_, err := download(raw, "vault/config")
	storageRefused(t, "read with the expired token", err, bloberror.AuthorizationFailure)
	mcRefused(t, mcPoints(rescue, file, testMachine, owner.passFile), "expired")
}

// TestBlobVaultCredentialsCertificateMode: a write-only machine of a
// certificate-mode blob vault, registered with backup credentials, backs
// up with their SAS token across a certificate rotation (sessions, its
// key epoch's certkeys), which never needs to delete or overwrite; the
// private key lists every point. A passphrase change, which deletes old
// key slots, is refused before it spends the PIN.
func TestBlobVaultCredentialsCertificateMode(t *testing.T) {
	endpoint := startAzurite(t)
	certDir := t.TempDir()
	c1 := ctNewCert(t, certDir, "sas1", true)
	c2 := ctNewCert(t, certDir, "sas2", true)
	owner := sasVault(t, endpoint, "sascert", "--certificate", c1.cert)

	file := mcCredentials(t, owner, "web02.azcreds")
	web := newEnv(t)
	pass := filepath.Join(web.dir, "passphrase-web02")
	web.mustAzfs("register", "--vault-credentials", file, "--name", "web02", "--generate-passphrase", pass)
	src := filepath.Join(t.TempDir(), "src")
	mcBuildTree(t, src)
	p1 := web.backup(src)
	owner.mustAzfs("certificate", "rotate", "--certificate", c2.cert)
	writeFile(t, filepath.Join(src, "hello.txt"), []byte("after the rotation\n"), 0o644)
	p2 := web.backup(src)
	p3 := web.backup(src)

	fresh := newEnv(t)
	fresh.extraEnv = owner.extraEnv
	if ids := ctMustPoints(t, fresh, owner.vault, "web02", c1.key); strings.Join(ids, ",") != p1.Point {
		t.Errorf("points with the first certificate's key: %v, want [%s]", ids, p1.Point)
	}
	if ids := ctMustPoints(t, fresh, owner.vault, "web02", c2.key); strings.Join(ids, ",") != p2.Point+","+p3.Point {
		t.Errorf("points with the second certificate's key: %v, want [%s %s]", ids, p2.Point, p3.Point)
	}

	pin := strings.TrimSpace(owner.mustAzfs("vault", "pin").stdout)
	newPass := filepath.Join(web.dir, "new-passphrase")
	mcRefused(t, web.azfs("passphrase", "change", "--generate-passphrase", newPass, "--pin", pin), "deletes the old key slots", "connection string")
	mcNotExist(t, newPass, "a refused passphrase change writes no passphrase file")
	// The PIN was not spent: with the owner's connection string the same
	// change goes through.
	conn := filepath.Join(web.dir, "conn")
	writeFile(t, conn, []byte(azuriteConn(endpoint)+"\n"), 0o600)
	web.mustAzfs("passphrase", "change", "--generate-passphrase", newPass, "--pin", pin, "--connection-string-file", conn)
	if _, err := os.Stat(newPass); errors.Is(err, os.ErrNotExist) {
		t.Error("the passphrase change wrote no passphrase file")
	}
}

// TestBlobKillDuringBackupWithSAS is TestBlobKillDuringBackup for a
// machine registered with backup credentials: resuming after the kill
// (adopting the packs that landed, saving their index) needs no delete or
// overwrite.
func TestBlobKillDuringBackupWithSAS(t *testing.T) {
	endpoint := startAzurite(t)
	owner := sasVault(t, endpoint, "sasresume")
	file := mcCredentials(t, owner, "resume.azcreds")
	web := newEnv(t)
	web.mustAzfs("register", "--vault-credentials", file, "--name", "web03", "--generate-passphrase", filepath.Join(web.dir, "passphrase"))
	killAndResume(t, web, blobPacks(t, owner.vault, azuriteConn(endpoint), "web03"))
}

// TestBlobJunkFromBackupSAS is finding 5 of issue 11 on a blob vault whose
// storage enforces the credentials: a backup SAS, which may only create
// (If-None-Match: *), uploads junk where azfs lists; prune failed and check
// exited 1 with no command to remove it. The owner's repair --apply moves
// it into the machine's quarantine, and prune and check pass.
func TestBlobJunkFromBackupSAS(t *testing.T) {
	endpoint := startAzurite(t)
	owner := sasVault(t, endpoint, "sasjunk")
	owner.backup(oneFileSource(t, 1<<20))

	backupCreds := sasOf(t, mcCredentials(t, owner, "backup.azcreds"))
	raw := rawClient(t, endpoint, "sasjunk", string(backupCreds.SAS))
	junk := junkObjects()
	for name, b := range junk {
		_, err := raw.NewBlockBlobClient("vault/machines/"+testMachine+"/"+name).UploadBuffer(context.Background(), b, &blockblob.UploadBufferOptions{
			AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}},
		})
		if err != nil {
			t.Fatalf("upload %s with the backup token: %v", name, err)
		}
	}
	if r := owner.azfs("prune", "--safety-margin", "0", "--no-backups-running"); r.code == 0 || !strings.Contains(r.stderr, "readable") {
		t.Errorf("prune with junk from the backup token: want it refused, got:\n%s", r)
	}
	if r := owner.azfs("check"); r.code != 1 {
		t.Errorf("check with junk from the backup token: exit %d, want 1\n%s", r.code, r)
	}
	r := owner.mustAzfs("repair", "--apply")
	for name := range junk {
		if !strings.Contains(r.stdout, `"quarantine/`+name+`"`) {
			t.Errorf("repair --apply does not list %q in quarantine:\n%s", name, r)
		}
	}
	owner.mustAzfs("prune", "--safety-margin", "0", "--no-backups-running")
	owner.mustAzfs("check", "--read-data")
}
