package repo

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage"
)

// Certificate mode (Azure Stack's model): the vault root lists certificates
// under certificates/<seq> (package repo/certs); the newest is current. A machine of a
// certificate-mode vault holds a write-only key set: it deduplicates and
// writes, sealing each backup's content under a fresh session key that it
// stores only wrapped to the current certificate (sessions/<key id>) and
// then forgets. Whoever holds the certificate's private key unwraps the
// machine's key set (certkeys/<cert id>) and the sessions, and reads.

const (
	sessionsPrefix = "sessions/"
	certKeysPrefix = "certkeys/"
)

// Wrapper encrypts a small secret to a certificate's public key with ad
// bound in; Unwrapper is the private key's side.
type (
	Wrapper   func(secret, ad []byte) ([]byte, error)
	Unwrapper func(wrapped, ad []byte) ([]byte, error)
)

func certKeyAD(areaID, certID string) []byte {
	return []byte("azfs-certkey-v1\x00" + areaID + "\x00" + certID)
}

// certKey is a key set encrypted under a one-time key that is wrapped to a
// certificate (the public-key operation only takes small secrets).
type certKey struct {
	Wrapped []byte `json:"wrapped"`
	Sealed  []byte `json:"sealed"`
}

// SaveCertKey stores the machine's write-only key set ks wrapped to its
// certificate, so that the certificate's private key opens the area.
func SaveCertKey(ctx context.Context, area storage.Storage, ks *keys.KeySet, wrap Wrapper) error {
	plain, err := ks.Marshal()
	if err != nil {
		return err
	}
	once, err := keys.NewSecret()
	if err != nil {
		return err
	}
	ad := certKeyAD(ks.Vault, ks.Certificate)
	wrapped, err := wrap(once[:], ad)
	if err != nil {
		return fmt.Errorf("wrap machine keys to the certificate: %w", err)
	}
	b, err := json.Marshal(certKey{Wrapped: wrapped, Sealed: keys.SealOnce(once, plain, ad)})
	if err != nil {
		return fmt.Errorf("store machine keys for the certificate: %w", err)
	}
	if err := area.Save(ctx, certKeysPrefix+ks.Certificate, b); err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("store machine keys for the certificate: %w", err)
	}
	return nil
}

// OpenMachineWithCertificate opens machine name's area with a private key:
// the area's keys wrapped to certificate certID, and every backup session
// wrapped to it.
func (r Root) OpenMachineWithCertificate(ctx context.Context, name, certID string, unwrap Unwrapper) (*Area, error) {
	area := r.MachineStorage(name)
	cfg, err := ReadConfig(ctx, area)
	if errors.Is(err, ErrNoVault) {
		return nil, r.NoMachine(ctx, name)
	}
	if err != nil {
		return nil, err
	}
	b, err := area.Load(ctx, certKeysPrefix+certID, 0, -1)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("machine %s has no backups under certificate %s", name, certID[:16])
	}
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	ks, err := openCertKey(b, name, cfg.ID, certID, unwrap)
	if err != nil {
		return nil, err
	}
	v, err := r.OpenMachine(ctx, name, ks)
	if err != nil {
		return nil, err
	}
	if err := v.unlockSessions(ctx, certID, unwrap); err != nil {
		return nil, err
	}
	// Open recorded every session as foreign before this unlocked some;
	// the set looks up held keys first, so those now open.
	return v, nil
}

// openCertKey decodes b, the certkeys/<certID> object of machine name's
// area (whose config ID is areaID), and opens the key set in it with unwrap.
// A wrapped key that unwrap refuses gives keys.ErrAuth; anything else that
// does not decode or open, ErrDamaged.
func openCertKey(b []byte, name, areaID, certID string, unwrap Unwrapper) (*keys.KeySet, error) {
	var ck certKey
	if err := json.Unmarshal(b, &ck); err != nil {
		return nil, fmt.Errorf("machine %s keys: %w: %w", name, ErrDamaged, err)
	}
	ad := certKeyAD(areaID, certID)
	once, err := unwrap(ck.Wrapped, ad)
	if err != nil || len(once) != len(keys.Secret{}) {
		return nil, fmt.Errorf("machine %s: unwrap its keys with the private key: %w", name, keys.ErrAuth)
	}
	plain, err := keys.OpenOnce(keys.Secret(once), ck.Sealed, ad)
	if err != nil {
		return nil, fmt.Errorf("machine %s keys: %w: %w", name, ErrDamaged, err)
	}
	ks, err := keys.ParseKeySet(plain)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w: %w", name, ErrDamaged, err)
	}
	return ks, nil
}

// session is a stored session key.
type session struct {
	Certificate string `json:"certificate"`
	Wrapped     []byte `json:"wrapped"`
}

func sessionAD(areaID string, keyID [8]byte) []byte {
	return []byte("azfs-session-v1\x00" + areaID + "\x00" + hex.EncodeToString(keyID[:]))
}

// StartSession gives a write-only machine a fresh data key for one backup:
// stored wrapped to its certificate, used to seal this run's content, and
// gone with the process.
func (v *Area) StartSession(ctx context.Context, wrap Wrapper) error {
	if !v.keys.WriteOnly() {
		return nil
	}
	key, err := keys.NewSecret()
	if err != nil {
		return err
	}
	s := keys.NewDataSealer(key)
	keyID := s.KeyID()
	wrapped, err := wrap(key[:], sessionAD(v.cfg.ID, keyID))
	if err != nil {
		return fmt.Errorf("wrap session key: %w", err)
	}
	b, err := json.Marshal(session{Certificate: v.keys.Certificate, Wrapped: wrapped})
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	// Stored before anything is sealed under it: every object has its key.
	if err := v.st.Save(ctx, sessionsPrefix+hex.EncodeToString(keyID[:]), b); err != nil {
		return fmt.Errorf("store session key: %w", err)
	}
	v.sealer = s
	return nil
}

// unlockSessions adds every session key wrapped to certID to the vault's
// openers; sessions under other certificates are recorded as foreign.
func (v *Area) unlockSessions(ctx context.Context, certID string, unwrap Unwrapper) error {
	names, err := v.list(ctx, sessionsPrefix)
	if err != nil {
		return err
	}
	for _, n := range names {
		keyID, ok := keyIDOf(n)
		if !ok {
			continue
		}
		b, err := v.st.Load(ctx, n, 0, -1)
		if err != nil {
			return fmt.Errorf("read session %x: %w", keyID, err)
		}
		sealer, err := openSession(b, v.cfg.ID, certID, keyID, unwrap)
		if err != nil {
			return err
		}
		if sealer == nil {
			v.open.AddForeign(keyID)
			continue
		}
		v.open.Add(sealer)
	}
	return nil
}

// openSession decodes b, the session object sessions/<keyID> of the area
// whose config ID is areaID, and returns the sealer of its key. It returns
// nil for a session that does not decode, is not certID's or does not
// unwrap (another certificate's: its content is foreign), and ErrDamaged
// for a key that does not match keyID.
func openSession(b []byte, areaID, certID string, keyID [8]byte, unwrap Unwrapper) (*keys.Sealer, error) {
	var s session
	if err := json.Unmarshal(b, &s); err != nil || s.Certificate != certID {
		return nil, nil
	}
	key, err := unwrap(s.Wrapped, sessionAD(areaID, keyID))
	if err != nil || len(key) != len(keys.Secret{}) {
		return nil, nil
	}
	sealer := keys.NewDataSealer(keys.Secret(key))
	if sealer.KeyID() != keyID {
		return nil, fmt.Errorf("session %x: %w: key does not match its name", keyID, ErrDamaged)
	}
	return sealer, nil
}

// ErrNoCertificateForWriteOnly reports a write-only machine of a vault that
// lists no certificate: it has nothing to encrypt a backup to.
var ErrNoCertificateForWriteOnly = errors.New("this machine is write-only but the vault lists no certificate")

// StartBackupSession prepares machine area v (of machine name) for a
// backup under mode, the vault's current certificate (nil: the vault is in
// passphrase mode, which needs nothing). When the certificate is not the
// one v's key set is for (the owner rotated, or switched the vault to
// certificate mode, since this machine's last backup), it moves the
// machine to the certificate's key epoch for good: the epoch's keys are
// stored wrapped to the certificate, handed to keep (which persists them,
// in the machine's keyring) and the area is reopened under them. Then it
// starts a session key wrapped to the certificate. It returns the area to
// back up to and whether the machine moved to a new epoch.
func (r Root) StartBackupSession(ctx context.Context, v *Area, name string, mode *CertMode, keep func(*keys.KeySet) error) (*Area, bool, error) {
	ks := v.Keys()
	if mode == nil {
		if ks.WriteOnly() {
			return nil, false, ErrNoCertificateForWriteOnly
		}
		return v, false, nil
	}
	moved := mode.ID != ks.Certificate
	if moved {
		next, err := r.RotateMachineKeys(ctx, name, ks, *mode)
		if err != nil {
			return nil, false, err
		}
		if err := keep(next); err != nil {
			return nil, false, err
		}
		if v, err = r.OpenMachine(ctx, name, next); err != nil {
			return nil, false, err
		}
	}
	if err := v.StartSession(ctx, mode.Wrap); err != nil {
		return nil, false, err
	}
	return v, moved, nil
}
