package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/azfs/azfs/repo/storage/azblob/azuritetest"
)

// azuriteConn is the connection string of the emulator's development
// account at the blob endpoint.
func azuriteConn(endpoint string) string {
	return "DefaultEndpointsProtocol=http;AccountName=" + azuritetest.DevAccount + ";AccountKey=" + azuritetest.DevKey + ";BlobEndpoint=" + endpoint + ";"
}

// startAzurite returns the blob endpoint of an Azurite emulator: the one
// AZURITE_BLOB_ENDPOINT names, or one started for the test with
// scripts/azurite.sh (after `npm ci`) and stopped when it ends (unlike
// package azuritetest's, which one test process shares: each test here
// gets an emulator, and its memory, of its own). Without Azurite the test
// fails under CI=true and is skipped otherwise.
func startAzurite(t *testing.T) string {
	t.Helper()
	if ep := os.Getenv("AZURITE_BLOB_ENDPOINT"); ep != "" {
		return ep
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if _, err := os.Stat(filepath.Join(root, "node_modules", ".bin", "azurite-blob")); err != nil {
		unavailable(t, fmt.Sprintf("Azurite is not installed (run npm ci in %s): %v", root, err))
	}
	script := filepath.Join(root, "scripts", "azurite.sh")
	start := exec.Command("bash", script, "start")
	start.Env = append(os.Environ(), "AZURITE_WATCH_PID="+strconv.Itoa(os.Getpid()))
	out, err = start.Output()
	if err != nil {
		t.Fatalf("start Azurite: %v", err)
	}
	vars := map[string]string{}
	for _, f := range strings.Fields(strings.TrimPrefix(strings.TrimSpace(string(out)), "export ")) {
		if k, v, ok := strings.Cut(f, "="); ok {
			vars[k] = v
		}
	}
	if vars["AZURITE_BLOB_ENDPOINT"] == "" || vars["AZURITE_PID"] == "" {
		t.Fatalf("scripts/azurite.sh start printed %q", out)
	}
	t.Cleanup(func() {
		stop := exec.Command("bash", script, "stop")
		stop.Env = append(os.Environ(), "AZURITE_PID="+vars["AZURITE_PID"], "AZURITE_DIR="+vars["AZURITE_DIR"])
		if out, err := stop.CombinedOutput(); err != nil {
			t.Errorf("stop Azurite: %v\n%s", err, out)
		}
	})
	return vars["AZURITE_BLOB_ENDPOINT"]
}

// TestBlobVaultRoundTrip: a vault in an Azure Blob container (Azurite)
// backs up a tree with every kind of entry, mounts its latest point and
// gives it back with its metadata; `check --read-data` finds it intact, and
// a second backup of the unchanged tree reads nothing.
func TestBlobVaultRoundTrip(t *testing.T) {
	requireFUSE(t)
	endpoint := startAzurite(t)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", azuriteConn(endpoint))
	e := newEnv(t)
	e.vault = endpoint + "/vaults/" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	e.passFile = filepath.Join(e.dir, "passphrase")
	e.mustAzfs("vault", "create", e.vault, "--generate-passphrase", e.passFile, "--machine", testMachine)

	src := filepath.Join(t.TempDir(), "src")
	mcBuildTree(t, src)
	first := e.backup(src)
	// As the first backup left it: reading a symlink's target updates its
	// atime (see TestCertificateModeBackupRecordsSymlinkAtime).
	want := snapshot(t, src)
	second := e.backup(src)
	// Nothing is read again; only listings whose metadata moved (the
	// symlink's atime) are stored anew.
	if second.Stats.BytesRead != 0 || second.Stats.BytesStored > 64<<10 {
		t.Errorf("second backup of an unchanged tree read %d and stored %d bytes, want 0 and a few KiB of listings", second.Stats.BytesRead, second.Stats.BytesStored)
	}
	if first.Stats.BytesStored == 0 {
		t.Errorf("first backup stored nothing")
	}
	m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "mnt")), "--point", "latest")
	compareTrees(t, "the blob vault's mount", want, snapshot(t, filepath.Join(m.dir, src)), compareOpts{atime: true})
	e.mustAzfs("check", "--read-data")
}
