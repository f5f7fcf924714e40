package policy

import (
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

// DefaultWindow is the soft-delete window of a vault whose owner set none:
// a forgotten point stays recoverable for 14 days, as in Azure Backup.
const DefaultWindow = 14 * 24 * time.Hour

// The root's soft-delete window records, and their signature context.
const (
	windowPrefix  = "softdelete/"
	windowContext = "soft-delete"
)

// windowRecord is the body of softdelete/<seq>.
type windowRecord struct {
	Vault  string    `json:"vault"`
	Seq    int       `json:"seq"`
	Time   time.Time `json:"time"`
	Window int64     `json:"window"` // seconds
}

// DecodeWindow parses the body of a soft-delete window record (its
// signature checked by the caller) of the vault vaultID, stored under seq.
func DecodeWindow(body []byte, vaultID string, seq int) (time.Duration, error) {
	var rec windowRecord
	if err := json.Unmarshal(body, &rec); err != nil {
		return 0, fmt.Errorf("%w: soft-delete window: %w", ErrPolicy, err)
	}
	if rec.Vault != vaultID || rec.Seq != seq {
		return 0, fmt.Errorf("%w: soft-delete window names vault %q, number %d", ErrElsewhere, rec.Vault, rec.Seq)
	}
	if rec.Time.IsZero() {
		return 0, fmt.Errorf("%w: soft-delete window without a time", ErrPolicy)
	}
	if rec.Window < 0 || rec.Window > int64(1<<63-1)/int64(time.Second) {
		return 0, fmt.Errorf("%w: soft-delete window of %d seconds", ErrPolicy, rec.Window)
	}
	return time.Duration(rec.Window) * time.Second, nil
}

// Window returns the vault's soft-delete window: that of the owner-signed
// record with the highest number, else DefaultWindow. As for policies,
// records copied from elsewhere are skipped, and a signed record that does
// not decode is an error, not a reason to fall back to an older one.
func Window(ctx context.Context, root repo.Root) (time.Duration, error) {
	if root.Owner == nil {
		return 0, repo.ErrNotOwnerVault
	}
	seqs, err := listSeqs(ctx, root.Storage, windowPrefix)
	if err != nil {
		return 0, fmt.Errorf("soft-delete window: %w", err)
	}
	for _, seq := range seqs {
		var body json.RawMessage
		err := signed.Load(ctx, root.Storage, seqName(windowPrefix, seq), *root.Owner, windowContext, &body)
		if errors.Is(err, repo.ErrDamaged) || errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("soft-delete window: %w", err)
		}
		d, err := DecodeWindow(body, root.ID, seq)
		if errors.Is(err, ErrElsewhere) {
			continue
		}
		return d, err
	}
	return DefaultWindow, nil
}

// SetWindow stores d as the vault's soft-delete window, signed by owner.
// Shortening it is an owner's deletion: the caller asks for the PIN.
func SetWindow(ctx context.Context, root repo.Root, owner *keys.OwnerKeys, d time.Duration, now time.Time) error {
	if err := root.CheckOwner(owner); err != nil {
		return fmt.Errorf("set soft-delete window: %w", err)
	}
	if d < 0 {
		return fmt.Errorf("%w: soft-delete window %s is negative", ErrPolicy, d)
	}
	err := saveNext(ctx, root.Storage, windowPrefix, func(seq int) error {
		rec := windowRecord{Vault: root.ID, Seq: seq, Time: now.UTC(), Window: int64(d / time.Second)}
		return signed.Save(ctx, root.Storage, seqName(windowPrefix, seq), owner, windowContext, rec)
	})
	if err != nil {
		return fmt.Errorf("set soft-delete window: %w", err)
	}
	return nil
}
