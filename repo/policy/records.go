package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage"
)

// The owner's records about a machine's points, in its area, and their
// signature context.
const (
	ownerPrefix  = "owner/"
	ownerContext = "points"
)

// Actions of owner records.
const (
	ActionForget   = "forget"
	ActionUndelete = "undelete"
)

// maxRecordPoints is how many points one owner record names at most, so
// that it stays well within the 64 KiB a signed record may have (each
// point is 67 bytes of JSON); more points take more records.
const maxRecordPoints = 500

// OwnerRecord is an owner's decision about some of a machine's points.
type OwnerRecord struct {
	ID     string // 32 hex digits, the record's name under owner/
	Action string // ActionForget or ActionUndelete
	Points []keys.ID
	Time   time.Time // when the owner decided, by the owner's clock
}

// ownerRecordBody is the signed body of machines/<name>/owner/<id>.
type ownerRecordBody struct {
	Vault   string    `json:"vault"`
	Machine string    `json:"machine"`
	ID      string    `json:"id"`
	Action  string    `json:"action"`
	Points  []keys.ID `json:"points"`
	Time    time.Time `json:"time"`
}

// ErrRecord reports an owner record or a tombstone that does not decode.
var ErrRecord = errkind.New(errkind.Damaged, "malformed record")

// DecodeOwnerRecord parses the body of an owner record (its signature
// checked by the caller) of machine in the vault vaultID, stored as
// owner/<id>.
func DecodeOwnerRecord(body []byte, vaultID, machine, id string) (OwnerRecord, error) {
	var b ownerRecordBody
	if err := json.Unmarshal(body, &b); err != nil {
		return OwnerRecord{}, fmt.Errorf("%w: %w", ErrRecord, err)
	}
	if b.Vault != vaultID || b.Machine != machine || b.ID != id {
		return OwnerRecord{}, fmt.Errorf("%w: it names vault %q, machine %q, record %q", ErrRecord, b.Vault, b.Machine, b.ID)
	}
	if b.Action != ActionForget && b.Action != ActionUndelete {
		return OwnerRecord{}, fmt.Errorf("%w: unknown action %q", ErrRecord, b.Action)
	}
	if len(b.Points) == 0 || b.Time.IsZero() {
		return OwnerRecord{}, fmt.Errorf("%w: no points or no time", ErrRecord)
	}
	return OwnerRecord{ID: b.ID, Action: b.Action, Points: b.Points, Time: b.Time}, nil
}

// isRecordID reports whether s is 32 lowercase hex digits.
func isRecordID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// ownerRecords returns the owner records of machine's area that the owner
// signed and that decode; others are skipped.
func ownerRecords(ctx context.Context, area storage.Storage, root repo.Config, machine string) ([]OwnerRecord, error) {
	var ids []string
	err := area.List(ctx, ownerPrefix, func(fi storage.Info) error {
		if id, ok := strings.CutPrefix(fi.Name, ownerPrefix); ok && isRecordID(id) {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", ownerPrefix, err)
	}
	var out []OwnerRecord
	for _, id := range ids {
		var body json.RawMessage
		err := signed.Load(ctx, area, ownerPrefix+id, *root.Owner, ownerContext, &body)
		if errors.Is(err, repo.ErrDamaged) || errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rec, err := DecodeOwnerRecord(body, root.ID, machine, id)
		if err != nil {
			continue
		}
		out = append(out, rec)
	}
	return out, nil
}

// saveOwnerRecords stores owner-signed records of action on points, as
// many as it takes.
func saveOwnerRecords(ctx context.Context, root repo.Root, owner *keys.OwnerKeys, machine, action string, points []keys.ID, now time.Time) error {
	if err := root.CheckOwner(owner); err != nil {
		return fmt.Errorf("%s points: %w", action, err)
	}
	area := root.MachineStorage(machine)
	for len(points) > 0 {
		n := min(len(points), maxRecordPoints)
		var raw [16]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return fmt.Errorf("%s points: read random: %w", action, err)
		}
		b := ownerRecordBody{Vault: root.ID, Machine: machine, ID: hex.EncodeToString(raw[:]), Action: action, Points: points[:n], Time: now.UTC()}
		if err := signed.Save(ctx, area, ownerPrefix+b.ID, owner, ownerContext, b); err != nil {
			return fmt.Errorf("%s points of %s: %w", action, machine, err)
		}
		points = points[n:]
	}
	return nil
}

// tombstoneVersion is the version of the tombstone plaintext.
const tombstoneVersion = 1

// Tombstone is what one application of a machine's retention policy
// forgot, as whoever applied it claims.
type Tombstone struct {
	Points []keys.ID
	// Time is when it was applied, by the applier's clock.
	Time time.Time
	// Policy is the number of the policy applied (0: the default).
	Policy int
	// Host is the host name of the applier, for people.
	Host string
}

// tombstoneBody is the plaintext of machines/<name>/tombstones/<id>.
type tombstoneBody struct {
	Version int       `json:"version"`
	Points  []keys.ID `json:"points"`
	Time    time.Time `json:"time"`
	Policy  int       `json:"policy"`
	Host    string    `json:"host,omitempty"`
}

// EncodeTombstone returns the plaintext of t.
func EncodeTombstone(t Tombstone) ([]byte, error) {
	b, err := json.Marshal(tombstoneBody{Version: tombstoneVersion, Points: t.Points, Time: t.Time.UTC(), Policy: t.Policy, Host: t.Host})
	if err != nil {
		return nil, fmt.Errorf("encode tombstone: %w", err)
	}
	return b, nil
}

// DecodeTombstone parses the plaintext of a tombstone (authenticated by
// the caller).
func DecodeTombstone(plain []byte) (Tombstone, error) {
	var b tombstoneBody
	if err := json.Unmarshal(plain, &b); err != nil {
		return Tombstone{}, fmt.Errorf("%w: tombstone: %w", ErrRecord, err)
	}
	if b.Version != tombstoneVersion || len(b.Points) == 0 || b.Time.IsZero() || b.Policy < 0 {
		return Tombstone{}, fmt.Errorf("%w: tombstone: version %d, %d points, time %s, policy %d", ErrRecord, b.Version, len(b.Points), b.Time, b.Policy)
	}
	return Tombstone{Points: b.Points, Time: b.Time, Policy: b.Policy, Host: b.Host}, nil
}
