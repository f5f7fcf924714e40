// Package signed is the owner-signed record (format.md §4.7), the one
// format of everything the owner signs in JSON: a format version, a body
// and the owner's Ed25519 signature over it under a context string that
// keeps a signature for one kind of record from being valid for another.
// The records of repo/access (credentials, PINs), of repo/policy
// (policies, soft-delete windows, forget and undelete records), repair's
// signed config copy and repo/certs' certificates are stored through it;
// each package owns its contexts.
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

// Version is the version of the signed-record format this code writes
// and reads. Records written before the envelope carried a version (no
// "v") are version 1 too: the format did not change. A reader refuses a
// record of a later version rather than misread it.
const Version = 1

// Record is how a signed record is stored (JSON): the format version, a
// JSON body and the owner's Ed25519 signature over exactly those bytes.
type Record struct {
	Version int    `json:"v,omitempty"`
	Body    []byte `json:"body"`
	Sig     []byte `json:"sig"`
}

// Decode parses a stored signed record without checking its signature.
// Anything that is not a record of a version this code reads wraps
// repo.ErrDamaged.
func Decode(b []byte) (Record, error) {
	var rec Record
	if len(b) > MaxRecord {
		return rec, fmt.Errorf("%w: larger than %d bytes", repo.ErrDamaged, MaxRecord)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("%w: %w", repo.ErrDamaged, err)
	}
	if rec.Version > Version || rec.Version < 0 {
		return rec, fmt.Errorf("%w: signed record of version %d (this azfs reads version %d)", repo.ErrDamaged, rec.Version, Version)
	}
	return rec, nil
}

// Open checks that pub signed the record's body under context and only
// then decodes the body into body. Anything else wraps repo.ErrDamaged
// (a bad signature, keys.ErrSignature too).
func (rec Record) Open(pub keys.OwnerPublic, context string, body any) error {
	if err := pub.Verify(context, rec.Body, rec.Sig); err != nil {
		return fmt.Errorf("%w: %w", repo.ErrDamaged, err)
	}
	if err := json.Unmarshal(rec.Body, body); err != nil {
		return fmt.Errorf("%w: %w", repo.ErrDamaged, err)
	}
	return nil
}

// Encode returns body as a signed record (JSON, then the envelope of
// Record), signed by owner under context.
func Encode(owner *keys.OwnerKeys, context string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return json.Marshal(Record{Version: Version, Body: b, Sig: owner.Sign(context, b)})
}

// Save stores body as a signed record (JSON, then the envelope of Record),
// signed by owner under context, as name in st. It never overwrites an
// existing object.
func Save(ctx context.Context, st storage.Storage, name string, owner *keys.OwnerKeys, context string, body any) error {
	rec, err := Encode(owner, context, body)
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
	rec, err := Decode(b)
	if err == nil {
		err = rec.Open(pub, context, body)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
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
	rec, err := Decode(b)
	if err != nil || json.Unmarshal(rec.Body, body) != nil {
		return fmt.Errorf("%s: %w: not a signed record", name, repo.ErrDamaged)
	}
	return nil
}
