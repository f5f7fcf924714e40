package repair

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage"
)

// configContext is the signature context of config copies (format §4.7).
const configContext = "config"

// ConfigReport is what the repair found of one config (the vault root's,
// or a machine area's) and did.
type ConfigReport struct {
	// State is "sound", "missing", "damaged", or "differs from its signed
	// copy".
	State string `json:"state"`
	// From says where a config that is not sound is rebuilt from: "its
	// signed copy", "the owner's keys" (root) or "the machine's escrow"
	// (area); empty when it is left alone.
	From string `json:"rebuilt_from,omitempty"`
	// Left says why a config that is not sound is left alone.
	Left string `json:"left_alone,omitempty"`
	// CopyWritten is set when the signed copy was missing or damaged and
	// is (or would be) written.
	CopyWritten bool `json:"copy_written"`
	// CopyDamaged is set when a signed copy is there that the owner did
	// not sign, or that names another vault or machine.
	CopyDamaged bool `json:"copy_damaged"`
}

// Acted reports whether the repair changes (or would change) something.
func (r *ConfigReport) Acted() bool { return r.From != "" || r.CopyWritten }

// SaveConfigCopy stores the owner-signed copy of cfg, the config of st (a
// vault root or a machine area). An existing copy is left as it is.
func SaveConfigCopy(ctx context.Context, st storage.Storage, cfg repo.Config, owner *keys.OwnerKeys) error {
	err := signed.Save(ctx, st, repo.ConfigCopyName, owner, configContext, cfg)
	if err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("save the signed copy of the config: %w", err)
	}
	return nil
}

// RootConfig returns the vault root config of st as the owner's keys and
// the config's signed copy establish it, and reports on the stored one.
// With apply, a config that is missing, damaged or not the owner's is
// rebuilt (from the copy, else from the owner's keys), and a missing copy
// is written. A config of a format this azfs does not read is an error,
// never rewritten.
func RootConfig(ctx context.Context, st storage.Storage, owner *keys.OwnerKeys, apply bool) (repo.Config, *ConfigReport, error) {
	pub := owner.Public()
	sound := func(c repo.Config) bool {
		return c.Format == repo.FormatVersion && c.ID == owner.Vault && c.Owner != nil && c.Owner.Equal(pub) && c.Machine == "" && c.Vault == ""
	}
	derive := func() (repo.Config, string, error) {
		created, err := oldest(ctx, st, "keys/")
		if err != nil {
			return repo.Config{}, "", err
		}
		return repo.Config{Format: repo.FormatVersion, ID: owner.Vault, Created: created, Owner: &pub}, "the owner's keys", nil
	}
	return settle(ctx, st, pub, sound, derive, apply, owner)
}

// AreaConfig is RootConfig for the area of machine name in the vault root
// st whose config is root: the area's ID comes from the machine's escrow.
// An area without a config that holds no index file, pack or point (its
// registration stopped before the config was saved) is left alone.
func AreaConfig(ctx context.Context, root repo.Root, name string, owner *keys.OwnerKeys, apply bool) (*ConfigReport, error) {
	ks, escrow, err := repo.MachineKeysAsOwner(ctx, root.Storage, root.ID, name, owner)
	if err != nil {
		return nil, err
	}
	area := root.MachineStorage(name)
	sound := func(c repo.Config) bool {
		return c.Format == repo.FormatVersion && c.ID == ks.Vault && c.Vault == root.ID && c.Machine == name && c.Owner == nil
	}
	derive := func() (repo.Config, string, error) {
		for _, prefix := range []string{"points/", "index/", "data/"} {
			t, err := oldest(ctx, area, prefix)
			if err != nil {
				return repo.Config{}, "", err
			}
			if !t.IsZero() {
				c := repo.Config{Format: repo.FormatVersion, ID: ks.Vault, Created: escrow.Modified.UTC().Truncate(time.Second), Vault: root.ID, Machine: name}
				c.Chunker.Min, c.Chunker.Avg, c.Chunker.Max = repo.ChunkerParams.Min, repo.ChunkerParams.Avg, repo.ChunkerParams.Max
				return c, "the machine's escrow", nil
			}
		}
		return repo.Config{}, "", nil
	}
	_, rep, err := settle(ctx, area, owner.Public(), sound, derive, apply, owner)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	return rep, nil
}

// settle compares the config of st with its signed copy and with what
// sound requires, and with apply puts both right: the config from the
// copy when the copy is sound, else from derive (which returns an empty
// source when it cannot), and the copy from the config.
func settle(ctx context.Context, st storage.Storage, pub keys.OwnerPublic, sound func(repo.Config) bool,
	derive func() (repo.Config, string, error), apply bool, owner *keys.OwnerKeys) (repo.Config, *ConfigReport, error) {
	rep := &ConfigReport{State: "sound"}
	var copied repo.Config
	haveCopy := false
	err := signed.Load(ctx, st, repo.ConfigCopyName, pub, configContext, &copied)
	switch {
	case err == nil && sound(copied):
		haveCopy = true
	case err == nil, errors.Is(err, repo.ErrDamaged):
		rep.CopyDamaged = true
	case !errors.Is(err, storage.ErrNotFound):
		return repo.Config{}, nil, err
	}
	cfg, err := repo.ReadConfig(ctx, st)
	switch {
	case errors.Is(err, repo.ErrNoVault), errors.Is(err, storage.ErrNotFound):
		rep.State = "missing"
	case errors.Is(err, repo.ErrDamaged):
		rep.State = "damaged"
		if _, serr := st.Stat(ctx, "config"); errors.Is(serr, storage.ErrNotFound) {
			rep.State = "missing"
		}
	case err != nil:
		return repo.Config{}, nil, err
	case !sound(cfg):
		rep.State = "damaged"
	case haveCopy && !sameConfig(cfg, copied):
		rep.State = "differs from its signed copy"
	}
	want := cfg
	if rep.State != "sound" {
		want, rep.From = copied, "its signed copy"
		if !haveCopy {
			if want, rep.From, err = derive(); err != nil {
				return repo.Config{}, nil, err
			}
		}
		if rep.From == "" {
			rep.Left = "no signed copy, and no index file, pack or point: a registration that stopped before its config was saved"
			return repo.Config{}, rep, nil
		}
	}
	rep.CopyWritten = !haveCopy
	if !apply {
		return want, rep, nil
	}
	if rep.From != "" {
		if err := repo.ReplaceConfig(ctx, st, want); err != nil {
			return repo.Config{}, nil, err
		}
	}
	if rep.CopyWritten {
		if rep.CopyDamaged {
			if err := st.Delete(ctx, repo.ConfigCopyName); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return repo.Config{}, nil, fmt.Errorf("delete the damaged signed copy of the config: %w", err)
			}
		}
		if err := SaveConfigCopy(ctx, st, want, owner); err != nil {
			return repo.Config{}, nil, err
		}
	}
	return want, rep, nil
}

func sameConfig(a, b repo.Config) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// oldest returns the earliest save time of the objects under prefix in
// st, truncated to the second; zero when there are none.
func oldest(ctx context.Context, st storage.Storage, prefix string) (time.Time, error) {
	var t time.Time
	found := false
	err := st.List(ctx, prefix, func(fi storage.Info) error {
		if !found || fi.Modified.Before(t) {
			t = fi.Modified
		}
		found = true
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("list %s: %w", prefix, err)
	}
	if found && t.IsZero() {
		t = time.Unix(0, 0) // the backend does not say: present all the same
	}
	return t.UTC().Truncate(time.Second), nil
}

// RootIDCandidates returns the vault IDs the objects of the vault root st
// name where its config is lost: its signed copy's (read, not yet
// verified) and the root ID every machine area's config names. The owner
// passphrase opens an owner slot under the right one only.
func RootIDCandidates(ctx context.Context, st storage.Storage) ([]string, error) {
	seen := make(map[string]bool)
	var out []string
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	var copied repo.Config
	if signed.DecodeUnverified(ctx, st, repo.ConfigCopyName, &copied) == nil {
		add(copied.ID)
	}
	names, err := repo.MachineAreas(ctx, st)
	if err != nil {
		return nil, err
	}
	root := repo.Root{Storage: st} // its config may be lost: only its storage is used
	for _, name := range names {
		if c, err := repo.ReadConfig(ctx, root.MachineStorage(name)); err == nil {
			add(c.Vault)
		}
	}
	return out, nil
}
