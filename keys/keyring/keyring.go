// Package keyring is this machine's local azfs state: the vaults it knows,
// where they are, which one is the default, their key sets, and for blob
// vaults the SAS token this machine uses, so that backups and same-machine
// recovery need no passphrase. The file holds secrets and is written 0600
// in a 0700 directory.
package keyring

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/azfs/azfs/keys"
)

// FileName is the keyring's file inside the config directory.
const FileName = "keyring.json"

// Vault is what the machine knows about one vault: where it is, the name
// this machine is registered under and its key set, and, on the owner's
// machine, the owner's keys.
type Vault struct {
	ID       string          `json:"id"`
	Location string          `json:"location"`
	Machine  string          `json:"machine"`
	Keys     *keys.KeySet    `json:"keys"`
	Owner    *keys.OwnerKeys `json:"owner,omitempty"`
	// OwnerPublic pins the owner's public keys as the credentials file
	// vouched for them at registration.
	OwnerPublic *keys.OwnerPublic `json:"owner_public,omitempty"`
	// SAS is the SAS token of the credentials this machine registered (or
	// last renewed) with, for a vault in a blob container: the storage
	// access of its backups, mounts and listings. SASExpires is when those
	// credentials expire.
	SAS        keys.Token `json:"sas,omitempty"`
	SASExpires time.Time  `json:"sas_expires,omitzero"`
}

// OwnerKeys returns the owner's public keys this machine trusts for the
// vault: its own owner keys, or those pinned at registration.
func (v *Vault) OwnerKeys() (keys.OwnerPublic, bool) {
	switch {
	case v.Owner != nil:
		return v.Owner.Public(), true
	case v.OwnerPublic != nil:
		return *v.OwnerPublic, true
	}
	return keys.OwnerPublic{}, false
}

// Keyring is the machine's state.
type Keyring struct {
	path    string
	Default string            `json:"default"` // vault ID
	Vaults  map[string]*Vault `json:"vaults"`  // by vault ID
	// Problems lists entries whose key sets were unusable and dropped, and
	// the keyring file or its directory when other users have permissions
	// on them (see [Exposed]).
	Problems []error `json:"-"`
}

// ConfigDir returns the directory azfs keeps its machine state in:
// $AZFS_CONFIG_DIR, else $XDG_CONFIG_HOME/azfs, else ~/.config/azfs.
func ConfigDir() (string, error) {
	if d := os.Getenv("AZFS_CONFIG_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find config directory: %w", err)
	}
	return filepath.Join(d, "azfs"), nil
}

// CacheDir returns the directory for azfs caches: $AZFS_CACHE_DIR, else
// $XDG_CACHE_HOME/azfs, else ~/.cache/azfs.
func CacheDir() (string, error) {
	if d := os.Getenv("AZFS_CACHE_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache directory: %w", err)
	}
	return filepath.Join(d, "azfs"), nil
}

// LoadHost loads this host's keyring, the one in ConfigDir.
func LoadHost() (*Keyring, error) {
	dir, err := ConfigDir()
	if err != nil {
		return nil, err
	}
	return Load(dir)
}

// Load reads the keyring in dir; a missing keyring is empty.
func Load(dir string) (*Keyring, error) {
	k := &Keyring{path: filepath.Join(dir, FileName), Vaults: make(map[string]*Vault)}
	b, err := os.ReadFile(k.path)
	if errors.Is(err, os.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	if err := json.Unmarshal(b, k); err != nil {
		return nil, fmt.Errorf("read keyring %s: %w", k.path, err)
	}
	if k.Vaults == nil {
		k.Vaults = make(map[string]*Vault)
	}
	k.Problems = append(k.Problems, Exposed(dir)...)
	for id, v := range k.Vaults {
		if v.Keys == nil {
			continue
		}
		if err := v.Keys.Validate(); err != nil {
			// Unusable keys are dropped, not trusted: that vault then
			// needs its passphrase again, and the others still work.
			v.Keys = nil
			k.Problems = append(k.Problems, fmt.Errorf("keyring %s: keys for vault %s dropped: %w", k.path, id, err))
		}
	}
	return k, nil
}

// Exposed reports the keyring in dir, and dir itself, when their mode gives
// its group or other users any permission (as ssh reports an unprotected
// private key, but as a warning: azfs still uses them). Each problem quotes
// the path and says which chmod ends it. A missing keyring is not exposed.
func Exposed(dir string) []error {
	file := filepath.Join(dir, FileName)
	if _, err := os.Lstat(file); err != nil {
		return nil
	}
	var problems []error
	for _, c := range []struct {
		path, what string
		want       fs.FileMode
	}{{dir, "keyring directory", 0o700}, {file, "keyring", 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		problems = append(problems, fmt.Errorf("%s %q has mode %#o: other users may read or replace this machine's vault keys; run: chmod %o %q",
			c.what, c.path, fi.Mode().Perm(), c.want, c.path))
	}
	return problems
}

// Save writes the keyring atomically with mode 0600.
func (k *Keyring) Save() error {
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return fmt.Errorf("save keyring: %w", err)
	}
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return fmt.Errorf("save keyring: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(k.path), ".keyring-*")
	if err != nil {
		return fmt.Errorf("save keyring: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save keyring: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save keyring: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save keyring: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save keyring: %w", err)
	}
	if err := os.Rename(tmp.Name(), k.path); err != nil {
		return fmt.Errorf("save keyring: %w", err)
	}
	return nil
}

// Add records a vault, making it the default when setDefault is true or
// when it is the only one.
func (k *Keyring) Add(v *Vault, setDefault bool) {
	k.Vaults[v.ID] = v
	if setDefault || k.Default == "" {
		k.Default = v.ID
	}
}

// FindLocation returns the known vault at location.
func (k *Keyring) FindLocation(location string) (*Vault, bool) {
	for _, v := range k.Vaults {
		if v.Location == location {
			return v, true
		}
	}
	return nil, false
}
