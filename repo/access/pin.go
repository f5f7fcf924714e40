package access

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage"
)

// PINValidity is how long a security PIN is valid after it is issued.
const PINValidity = 5 * time.Minute

// pinKDF are the Argon2id parameters of new PIN records: at 64 MiB and one
// pass, each guess costs a storage reader what a legitimate check costs,
// far too much to try 10^8 PINs within PINValidity. Tests lower it.
var pinKDF = keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64 << 10, Threads: 1}

// pinGrace is how long an expired PIN record is kept, so that a PIN typed
// late is reported as expired rather than wrong. Older records are deleted
// by UsePIN.
const pinGrace = time.Hour

// Names of PIN records and of the markers that consume them.
const (
	pinsPrefix = "pins/"
	usedSuffix = "-used"
)

// pinRecord is the body of the owner-signed record pins/<id>. It names no
// purpose: a PIN allows whatever operation asks for one.
type pinRecord struct {
	Vault   string    `json:"vault"`
	ID      string    `json:"id"`
	Expires time.Time `json:"expires"`
	KDF     keys.KDF  `json:"kdf"`
	Salt    []byte    `json:"salt"`
	Hash    []byte    `json:"hash"` // Argon2id of the 8 digits, 32 bytes
}

// IssuePIN makes a security PIN for the vault root st (whose config is root
// and whose owner's keys are owner): 8 random decimal digits, shown as
// "1234-5678", valid for PINValidity from now. It stores the owner-signed
// record pins/<id>, which holds a salted Argon2id hash of the digits (one
// pass over 64 MiB, one thread), so that a storage reader cannot try all
// 10^8 PINs while one is valid.
func IssuePIN(ctx context.Context, root repo.Root, owner *keys.OwnerKeys, now time.Time) (pin string, expires time.Time, err error) {
	if err := root.CheckOwner(owner); err != nil {
		return "", time.Time{}, fmt.Errorf("issue security PIN: %w", err)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(100_000_000))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue security PIN: read random: %w", err)
	}
	digits := fmt.Sprintf("%08d", n.Int64())
	rec := pinRecord{Vault: root.ID, Expires: now.UTC().Add(PINValidity), KDF: pinKDF, Salt: make([]byte, 16)}
	if rec.ID, err = newID(); err != nil {
		return "", time.Time{}, fmt.Errorf("issue security PIN: %w", err)
	}
	if _, err := rand.Read(rec.Salt); err != nil {
		return "", time.Time{}, fmt.Errorf("issue security PIN: read random: %w", err)
	}
	rec.Hash = hashPIN(digits, rec.Salt, rec.KDF)
	if err := signed.Save(ctx, root.Storage, pinsPrefix+rec.ID, owner, pinContext, rec); err != nil {
		return "", time.Time{}, fmt.Errorf("issue security PIN: %w", err)
	}
	return digits[:4] + "-" + digits[4:], rec.Expires, nil
}

// UsePIN checks pin ("1234-5678" or "12345678", surrounding space ignored)
// against the PIN records of the vault root st (whose config is root) that
// its owner signed, and consumes the matching one by saving
// pins/<id>-used: Save never overwrites, so exactly one use wins even when
// callers race. A wrong, expired or used PIN gives an error wrapping ErrPIN
// that says which.
//
// Only records the owner signed and that are unexpired, or expired within
// the last hour, are hashed, so the Argon2id work is bounded by how many
// PINs the owner issued lately, not by what others planted. Older records
// are deleted on the way, as far as the storage lets.
func UsePIN(ctx context.Context, root repo.Root, pin string, now time.Time) error {
	if root.Owner == nil {
		return fmt.Errorf("use security PIN: %w", repo.ErrNotOwnerVault)
	}
	digits, ok := normalizePIN(pin)
	if !ok {
		return fmt.Errorf("%w: a security PIN is 8 digits, such as 1234-5678", ErrPIN)
	}
	live, used, expired, err := pinRecords(ctx, root, now)
	if err != nil {
		return fmt.Errorf("use security PIN: %w", err)
	}
	for _, rec := range live {
		if !rec.matches(digits) {
			continue
		}
		err := root.Storage.Save(ctx, pinsPrefix+rec.ID+usedSuffix, []byte(now.UTC().Format(time.RFC3339Nano)))
		if errors.Is(err, storage.ErrExists) {
			return pinUsed()
		}
		if err != nil {
			return fmt.Errorf("use security PIN: %w", err)
		}
		return nil
	}
	for _, rec := range used {
		if rec.matches(digits) {
			return pinUsed()
		}
	}
	for _, rec := range expired {
		if rec.matches(digits) {
			return fmt.Errorf("%w: it expired at %s: ask the vault's owner for a new one ('azfs vault pin')", ErrPIN, rec.Expires.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
	}
	return fmt.Errorf("%w: it is wrong", ErrPIN)
}

func pinUsed() error {
	return fmt.Errorf("%w: it was already used: ask the vault's owner for a new one ('azfs vault pin')", ErrPIN)
}

// pinRecords returns the usable PIN records of the vault root st: live
// ones, used ones and ones expired within pinGrace. Records that are not
// the owner's, or that do not decode, are left alone; records expired for
// longer are deleted, their marker first, ignoring failures.
func pinRecords(ctx context.Context, root repo.Root, now time.Time) (live, used, expired []*pinRecord, err error) {
	var ids []string
	marked := make(map[string]bool)
	err = root.Storage.List(ctx, pinsPrefix, func(fi storage.Info) error {
		name, _ := strings.CutPrefix(fi.Name, pinsPrefix)
		if id, ok := strings.CutSuffix(name, usedSuffix); ok {
			marked[id] = true
		} else if isID(name) {
			ids = append(ids, name)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	for _, id := range ids {
		var rec pinRecord
		err := signed.Load(ctx, root.Storage, pinsPrefix+id, *root.Owner, pinContext, &rec)
		if errors.Is(err, repo.ErrDamaged) || errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, nil, err
		}
		if rec.ID != id || rec.Vault != root.ID || !rec.usable() {
			continue
		}
		switch {
		case !now.Before(rec.Expires.Add(pinGrace)):
			_ = root.Storage.Delete(ctx, pinsPrefix+id+usedSuffix)
			_ = root.Storage.Delete(ctx, pinsPrefix+id)
		case marked[id]:
			used = append(used, &rec)
		case !now.Before(rec.Expires):
			expired = append(expired, &rec)
		default:
			live = append(live, &rec)
		}
	}
	return live, used, expired, nil
}

// usable reports whether the record's hash can be checked at a bounded
// cost.
func (r *pinRecord) usable() bool {
	k := r.KDF
	return k.Algorithm == "argon2id" && k.Time >= 1 && k.Time <= 4 && k.Threads >= 1 && k.Threads <= 4 &&
		k.MemoryKiB >= 8*uint32(k.Threads) && k.MemoryKiB <= 256<<10 && len(r.Salt) >= 16 && len(r.Hash) == 32
}

func (r *pinRecord) matches(digits string) bool {
	return subtle.ConstantTimeCompare(hashPIN(digits, r.Salt, r.KDF), r.Hash) == 1
}

func hashPIN(digits string, salt []byte, k keys.KDF) []byte {
	return argon2.IDKey([]byte(digits), salt, k.Time, k.MemoryKiB, k.Threads, 32)
}

// normalizePIN returns the 8 digits of pin, written with or without the
// dash and with any surrounding space.
func normalizePIN(pin string) (string, bool) {
	s := strings.TrimSpace(pin)
	if len(s) == 9 && s[4] == '-' {
		s = s[:4] + s[5:]
	}
	if len(s) != 8 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	return s, true
}
