package keyring_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
)

func TestLoadMissingIsEmpty(t *testing.T) {
	k, err := keyring.Load(filepath.Join(t.TempDir(), "does", "not", "exist"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if k.Default != "" || k.Vaults == nil || len(k.Vaults) != 0 {
		t.Fatalf("Load of a missing keyring = default %q, vaults %v; want empty with a usable map", k.Default, k.Vaults)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config", "azfs")
	k, err := keyring.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ksA, err := keys.NewKeySet("vault-a")
	if err != nil {
		t.Fatal(err)
	}
	ksB, err := keys.NewKeySet("vault-b")
	if err != nil {
		t.Fatal(err)
	}
	k.Add(&keyring.Vault{ID: "vault-a", Location: "/backups/a", Machine: "m1", Keys: ksA}, false)
	expires := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	k.Add(&keyring.Vault{ID: "vault-b", Location: "https://acct.blob.core.windows.net/vaults/b", Machine: "m1", Keys: ksB,
		SAS: "si=azfs-b-create-00&sig=SECRETSIG&sr=c&sv=2025-11-05", SASExpires: expires}, false)
	if k.Default != "vault-a" {
		t.Errorf("Default = %q, want the first vault added", k.Default)
	}
	if err := k.Save(); err != nil {
		t.Fatalf("Save: %v", err)
	}

	fi, err := os.Stat(filepath.Join(dir, keyring.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("keyring file mode %o, want 600", perm)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("keyring directory mode %o, want 700", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("keyring directory holds %d entries, want only %s (no temporary files left)", len(entries), keyring.FileName)
	}

	back, err := keyring.Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if back.Default != "vault-a" || len(back.Vaults) != 2 {
		t.Fatalf("loaded default %q with %d vaults", back.Default, len(back.Vaults))
	}
	for id, want := range map[string]*keys.KeySet{"vault-a": ksA, "vault-b": ksB} {
		v := back.Vaults[id]
		if v == nil || v.Keys == nil {
			t.Fatalf("vault %s missing after reload", id)
		}
		if *v.Keys != *want {
			t.Errorf("vault %s: key set changed in the round trip", id)
		}
	}
	if v, ok := back.FindLocation("https://acct.blob.core.windows.net/vaults/b"); !ok || v.ID != "vault-b" {
		t.Errorf("FindLocation(https://acct.blob.core.windows.net/vaults/b) = %v, %v", v, ok)
	}
	if b := back.Vaults["vault-b"]; b.SAS != "si=azfs-b-create-00&sig=SECRETSIG&sr=c&sv=2025-11-05" || !b.SASExpires.Equal(expires) {
		t.Errorf("vault-b: SAS or its expiry changed in the round trip (expires %v)", b.SASExpires)
	}
	if a := back.Vaults["vault-a"]; a.SAS != "" || !a.SASExpires.IsZero() {
		t.Errorf("vault-a: a SAS appeared in the round trip (expires %v)", a.SASExpires)
	}
	raw, err := os.ReadFile(filepath.Join(dir, keyring.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), `"sas"`); n != 1 || strings.Count(string(raw), `"sas_expires"`) != 1 {
		t.Errorf("the keyring holds %d SAS fields, want only vault-b's:\n%s", n, raw)
	}
	if out := fmt.Sprintf("%+v", *back.Vaults["vault-b"]); strings.Contains(out, "SECRETSIG") {
		t.Errorf("printing a keyring entry shows its SAS: %s", out)
	}
	if _, ok := back.FindLocation("/elsewhere"); ok {
		t.Errorf("FindLocation of an unknown location succeeded")
	}

	// Saving again replaces the file atomically and keeps its mode.
	back.Add(&keyring.Vault{ID: "vault-c", Location: "/c", Keys: ksA}, true)
	if err := back.Save(); err != nil {
		t.Fatalf("second Save: %v", err)
	}
	again, err := keyring.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Default != "vault-c" || len(again.Vaults) != 3 {
		t.Errorf("after second save: default %q, %d vaults", again.Default, len(again.Vaults))
	}
}

func TestAddDefault(t *testing.T) {
	k, err := keyring.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k.Add(&keyring.Vault{ID: "a"}, false)
	k.Add(&keyring.Vault{ID: "b"}, false)
	if k.Default != "a" {
		t.Errorf("Default = %q after adding b without setDefault, want a", k.Default)
	}
	k.Add(&keyring.Vault{ID: "b"}, true)
	if k.Default != "b" {
		t.Errorf("Default = %q after setDefault, want b", k.Default)
	}
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, keyring.FileName), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Load(dir); err == nil || !strings.Contains(err.Error(), keyring.FileName) {
		t.Errorf("Load of a corrupt keyring: err = %v, want an error naming the file", err)
	}
	// A null vault map is repaired to an empty one.
	if err := os.WriteFile(filepath.Join(dir, keyring.FileName), []byte(`{"default":"x","vaults":null}`), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := keyring.Load(dir)
	if err != nil || k.Vaults == nil {
		t.Fatalf("Load with null vaults = %v, %v", k, err)
	}
}

func TestLoadDropsInvalidKeySet(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil { // not a problem of its own
		t.Fatal(err)
	}
	// A key set without its index key would seal under an all-zero key.
	in := `{"default":"v","vaults":{"v":{"id":"v","keys":{"version":1,"vault":"v",` +
		`"id_key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",` +
		`"data_key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",` +
		`"chunker_seed":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}}}}`
	if err := os.WriteFile(filepath.Join(dir, keyring.FileName), []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := keyring.Load(dir)
	if err != nil {
		t.Fatalf("Load of a keyring with an incomplete key set: %v", err)
	}
	if v := k.Vaults["v"]; v == nil || v.Keys != nil {
		t.Errorf("vault entry %+v: want it kept without its unusable keys", v)
	}
	if len(k.Problems) != 1 || !errors.Is(k.Problems[0], keys.ErrKeySet) {
		t.Errorf("Problems = %v, want one wrapping ErrKeySet", k.Problems)
	}
}

func TestDirsFromEnvironment(t *testing.T) {
	t.Setenv("AZFS_CONFIG_DIR", "/some/config")
	t.Setenv("AZFS_CACHE_DIR", "/some/cache")
	if d, err := keyring.ConfigDir(); err != nil || d != "/some/config" {
		t.Errorf("ConfigDir() = %q, %v", d, err)
	}
	if d, err := keyring.CacheDir(); err != nil || d != "/some/cache" {
		t.Errorf("CacheDir() = %q, %v", d, err)
	}
	t.Setenv("AZFS_CONFIG_DIR", "")
	t.Setenv("AZFS_CACHE_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", "/xdg/config")
	t.Setenv("XDG_CACHE_HOME", "/xdg/cache")
	if d, err := keyring.ConfigDir(); err != nil || d != "/xdg/config/azfs" {
		t.Errorf("ConfigDir() with XDG_CONFIG_HOME = %q, %v", d, err)
	}
	if d, err := keyring.CacheDir(); err != nil || d != "/xdg/cache/azfs" {
		t.Errorf("CacheDir() with XDG_CACHE_HOME = %q, %v", d, err)
	}
}

// TestExposed is finding 11 of issue 11: a keyring, or its directory, that
// other users could read gave no warning. Load reports each, quoting the
// path and naming the chmod that ends it; the modes azfs creates give none.
func TestExposed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "azfs config")
	k, err := keyring.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Save(); err != nil {
		t.Fatal(err)
	}
	if k, err = keyring.Load(dir); err != nil || len(k.Problems) != 0 {
		t.Fatalf("Load of a keyring azfs saved = %v, problems %v; want none", err, k.Problems)
	}
	file := filepath.Join(dir, keyring.FileName)
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	k, err = keyring.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("keyring directory %q has mode 0750: other users may read or replace this machine's vault keys; run: chmod 700 %q", dir, dir),
		fmt.Sprintf("keyring %q has mode 0644: other users may read or replace this machine's vault keys; run: chmod 600 %q", file, file),
	}
	var got []string
	for _, p := range k.Problems {
		got = append(got, p.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if p := keyring.Exposed(dir); len(p) != 0 {
		t.Errorf("Exposed with no keyring = %v, want nothing: there is no key to expose", p)
	}
}
