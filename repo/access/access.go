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
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/azfs/azfs/internal/errkind"
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

// ParseAccess reads a kind of access by its name (backup, restore), as
// a command's --access flag gives it.
func ParseAccess(s string) (Access, error) {
	if a := Access(s); a.known() {
		return a, nil
	}
	return "", fmt.Errorf("must be %s or %s, not %q", AccessBackup, AccessRestore, s)
}

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
