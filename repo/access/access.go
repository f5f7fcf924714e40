// Package access is what a vault's owner issues so that machines may use the
// vault, and what those machines present: vault credentials files and
// security PINs, modelled on Azure Backup's.
//
// Vault credentials ([Credentials], the file an owner downloads with
// 'azfs vault credentials') name a vault, where it is, the owner's public
// keys, and a secret; they allow backup (registering machines, backing up,
// listing, restoring) or restore only, and expire (after 48 hours by the
// CLI's default). The vault keeps an owner-signed record of every
// credentials file it issued, holding only a hash of the secret; deleting
// the record revokes the file ([Revoke]). A machine checks the vault it is
// given against the owner keys in the file, not against what the storage
// says about itself, so a swapped vault is refused.
//
// A security PIN ([IssuePIN], 'azfs vault pin') is eight digits the owner
// generates and reads out to whoever changes a machine's passphrase, or
// types in to forget recovery points or shorten a retention (package
// repo/policy). It is valid for [PINValidity] and works once.
//
// For a vault in a local directory every check here is made by the client:
// a directory cannot enforce anything, and whoever can write to it can do
// anything to the vault, credentials or not. The checks keep honest
// machines from using a vault they were not given, from using expired or
// revoked credentials, and from being fooled by a vault that is not the
// one their credentials name. Credentials of a vault in an Azure Blob
// container also carry a SAS token (Credentials.SAS, minted by the CLI
// with repo/storage/azblob), whose permissions, expiry and revocation the
// storage service enforces; the checks here are made all the same.
package access

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage"
)

// Access is what a credentials file allows.
type Access string

// The kinds of access.
const (
	AccessBackup  Access = "backup"
	AccessRestore Access = "restore"
)

// Allows reports whether credentials of access a permit an operation needing
// need: backup permits backup and restore (registering machines, backing up,
// listing, restoring); restore permits restore only. Unknown kinds permit
// nothing.
func (a Access) Allows(need Access) bool {
	switch a {
	case AccessBackup:
		return need == AccessBackup || need == AccessRestore
	case AccessRestore:
		return need == AccessRestore
	}
	return false
}

func (a Access) known() bool { return a == AccessBackup || a == AccessRestore }

// Errors that commands report to users; the wrapping error says what
// exactly happened and what to do.
var (
	ErrMalformed = errkind.New(errkind.Invalid, "malformed vault credentials file")
	ErrExpired   = errkind.New(errkind.Permission, "vault credentials expired")
	ErrRevoked   = errkind.New(errkind.Permission, "vault credentials revoked")
	ErrForeign   = errkind.New(errkind.Permission, "vault credentials were not issued for this vault")
	ErrAccess    = errkind.New(errkind.Permission, "vault credentials do not allow this")
	ErrPIN       = errkind.New(errkind.Permission, "security PIN refused")
)

// Signature contexts: a signature for one kind of record is never valid
// for another.
const (
	credentialsContext = "credentials"
	pinContext         = "pin"
)

// maxRecord bounds what is read of a stored record, so a planted object
// cannot make a client allocate without bound.
const maxRecord = 64 << 10

// signedRecord is how credentials and PIN records are stored: a JSON body
// and the owner's Ed25519 signature over exactly those bytes.
type signedRecord struct {
	Body []byte `json:"body"`
	Sig  []byte `json:"sig"`
}

// SaveSigned stores body as a signed record (JSON, then the envelope of
// signedRecord), signed by owner under context, as name in st. It never
// overwrites an existing object. Other packages of owner-signed records
// (repo/policy) use it too, each with contexts of their own.
func SaveSigned(ctx context.Context, st storage.Storage, name string, owner *keys.OwnerKeys, context string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	rec, err := json.Marshal(signedRecord{Body: b, Sig: owner.Sign(context, b)})
	if err != nil {
		return err
	}
	return st.Save(ctx, name, rec)
}

// LoadSigned reads the signed record name (at most 64 KiB), checks that
// pub signed it under context and only then decodes its body into body.
// Storage errors are returned as they are (ErrNotFound for a missing
// record); a record that does not decode, or that the owner did not sign,
// wraps repo.ErrDamaged (and then keys.ErrSignature).
func LoadSigned(ctx context.Context, st storage.Storage, name string, pub keys.OwnerPublic, context string, body any) error {
	b, err := st.Load(ctx, name, 0, maxRecord+1)
	if err != nil {
		return err
	}
	if len(b) > maxRecord {
		return fmt.Errorf("%s: %w: larger than %d bytes", name, repo.ErrDamaged, maxRecord)
	}
	var rec signedRecord
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
	b, err := st.Load(ctx, name, 0, maxRecord+1)
	if err != nil {
		return err
	}
	var rec signedRecord
	if len(b) > maxRecord || json.Unmarshal(b, &rec) != nil || json.Unmarshal(rec.Body, body) != nil {
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

// idLen is the length of vault, credential and PIN record IDs in hex digits.
const idLen = 32

// newID returns a random ID of idLen lower-case hex digits.
func newID() (string, error) {
	var raw [idLen / 2]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return hex.EncodeToString(raw[:]), nil
}

// isID reports whether s is idLen lower-case hex digits.
func isID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
