// Package signed is the owner-signed JSON record (format.md §4.7): a body
// and the owner's Ed25519 signature over it under a context string that
// keeps a signature for one kind of record from being valid for another.
// The records of repo/access (credentials, PINs) and of repo/policy
// (policies, soft-delete windows, forget and undelete records) are stored
// through it; each package owns its contexts.
package signed

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage"
)

// MaxRecord bounds what is read of a stored record, so a planted object
// cannot make a client allocate without bound.
const MaxRecord = 64 << 10

// Record is how a signed record is stored (JSON): a JSON body and the
// owner's Ed25519 signature over exactly those bytes.
type Record struct {
	Body []byte `json:"body"`
	Sig  []byte `json:"sig"`
}

// Save stores body as a signed record (JSON, then the envelope of Record),
// signed by owner under context, as name in st. It never overwrites an
// existing object.
func Save(ctx context.Context, st storage.Storage, name string, owner *keys.OwnerKeys, context string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	rec, err := json.Marshal(Record{Body: b, Sig: owner.Sign(context, b)})
	if err != nil {
		return err
	}
	return st.Save(ctx, name, rec)
}

// Load reads the signed record name (at most 64 KiB), checks that
// pub signed it under context and only then decodes its body into body.
// Storage errors are returned as they are (ErrNotFound for a missing
// record); a record that does not decode, or that the owner did not sign,
// wraps repo.ErrDamaged (and then keys.ErrSignature).
func Load(ctx context.Context, st storage.Storage, name string, pub keys.OwnerPublic, context string, body any) error {
	b, err := st.Load(ctx, name, 0, MaxRecord+1)
	if err != nil {
		return err
	}
	if len(b) > MaxRecord {
		return fmt.Errorf("%s: %w: larger than %d bytes", name, repo.ErrDamaged, MaxRecord)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("%s: %w: %w", name, repo.ErrDamaged, err)
	}
	if err := pub.Verify(context, rec.Body, rec.Sig); err != nil {
		return fmt.Errorf("%s: %w: %w", name, repo.ErrDamaged, err)
	}
	if err := json.Unmarshal(rec.Body, body); err != nil {
		return fmt.Errorf("%s: %w: %w", name, repo.ErrDamaged, err)
	}
	return nil
}

// DecodeUnverified decodes the body of the signed record name into body
// without checking its signature, for a reader that has no owner key to
// check it with yet and authenticates what it learns another way (azfs
// repair takes a lost root config's vault ID from its signed copy, and an
// owner slot opens under the right ID only).
func DecodeUnverified(ctx context.Context, st storage.Storage, name string, body any) error {
	b, err := st.Load(ctx, name, 0, MaxRecord+1)
	if err != nil {
		return err
	}
	var rec Record
	if len(b) > MaxRecord || json.Unmarshal(b, &rec) != nil || json.Unmarshal(rec.Body, body) != nil {
		return fmt.Errorf("%s: %w: not a signed record", name, repo.ErrDamaged)
	}
	return nil
}

// CheckOwner refuses owner keys that are not those of the vault root root,
// before anything is signed with them.
func CheckOwner(root repo.Config, owner *keys.OwnerKeys) error {
	if root.Owner == nil {
		return repo.ErrNotOwnerVault
	}
	if owner.Vault != root.ID || !owner.Public().Equal(*root.Owner) {
		return repo.ErrOwnerMismatch
	}
	return nil
}
