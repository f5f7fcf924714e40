// Package repo is the vault: its configuration, key slots, packs, index and
// recovery points, on top of any storage.Storage. It reads and writes blobs
// (chunks and tree parts) and points; the backup pipeline, the checker and
// the mount build on it.
package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/internal/freelist"
	"github.com/azfs/azfs/internal/par"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/index"
	"github.com/azfs/azfs/repo/pack"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/tree"
)

// Object names in the storage.
const (
	configName = "config"
	keysPrefix = "keys/"
	dataPrefix = "data/"
)

// Where the sealed objects of an area's core kinds live (see SaveObject):
// index files (keys.KindIndex) and recovery points (keys.KindPoint).
const (
	IndexPrefix  = "index/"
	PointsPrefix = "points/"
)

// FormatVersion is the vault format this code writes and reads.
const FormatVersion = 1

// Config is the vault's plaintext configuration object. It holds nothing
// secret; everything that matters is bound to its ID by the key slots.
//
// The vault root's config carries the owner's public keys; a machine's area
// (machines/<name>/) has a config of its own, naming its vault and machine.
type Config struct {
	Format  int       `json:"format"`
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	Chunker struct {
		Min int `json:"min"`
		Avg int `json:"avg"`
		Max int `json:"max"`
	} `json:"chunker"`
	Owner   *keys.OwnerPublic `json:"owner,omitempty"`   // vault root only
	Vault   string            `json:"vault,omitempty"`   // machine area: the vault's ID
	Machine string            `json:"machine,omitempty"` // machine area: the machine's name
}

// Errors that commands report to users.
var (
	ErrNoVault      = errkind.New(errkind.NotFound, "no vault here")
	ErrForeignVault = errkind.New(errkind.Permission, "the keys belong to another vault")
	ErrVaultExists  = errkind.New(errkind.Exists, "a vault already exists here")
	ErrDamaged      = errkind.New(errkind.Damaged, "damaged vault data")
)

// Area is one machine's area of a vault (format §2.2), open with its keys.
type Area struct {
	st     storage.Storage
	cfg    Config
	keys   *keys.KeySet
	sealer *keys.Sealer  // seals content (chunks, tree parts, points); nil on a write-only machine until StartSession
	open   *keys.Openers // opens content, under every data key this machine holds
	meta   *keys.Sealer  // index files and pack trailers
	idx    *index.Index
	cache  BlobCache // sealed blobs and index files kept between processes; nil: none
	// segments, when set, reads small blobs through pack segments.
	segments *segments
	// damage holds the copies of blobs this process found bad.
	damage damageLog
}

// BlobCache keeps sealed objects read from the vault, as stored, so that a
// later process reads them again without the storage (package
// cache/diskcache, for mounts of remote vaults). Blobs are kept under their
// ID in hex, index files under "index-" and theirs, pack segments (see
// segments) under "seg-<pack ID>-<n>". What it returns is authenticated
// before use, blob by blob, as anything read from the storage is, and an
// object that fails is removed and read from the storage instead.
type BlobCache interface {
	// Get returns the object stored under key. The caller owns the slice
	// (the vault decrypts it in place).
	Get(key string) ([]byte, bool)
	// Put stores b under key, best effort. It must not keep b after it
	// returns.
	Put(key string, b []byte)
	// Remove drops the object stored under key.
	Remove(key string)
}

// SetCache makes the vault look for blobs and index files in c before the
// storage, and keep there what it loads from the storage. Call it before
// LoadIndex and before any concurrent use.
func (v *Area) SetCache(c BlobCache) { v.cache = c }

// ReadConfig reads the vault's configuration.
func ReadConfig(ctx context.Context, st storage.Storage) (Config, error) {
	var cfg Config
	b, err := st.Load(ctx, configName, 0, -1)
	if errors.Is(err, storage.ErrNotFound) {
		return cfg, lostConfig(ctx, st, err)
	}
	if err != nil {
		return cfg, fmt.Errorf("read vault config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.ID == "" {
		return cfg, lostConfig(ctx, st, errors.New("not an azfs vault config"))
	}
	if cfg.Format != FormatVersion {
		return cfg, fmt.Errorf("read vault config: format %d is not supported (this azfs reads format %d)", cfg.Format, FormatVersion)
	}
	// Every config but the root's (owner keys, no machine) may hold data,
	// and backups hand its chunk size bounds to the chunker, which panics
	// on bounds it cannot use (repo/chunker New) and allocates buffers of
	// Max bytes.
	if c := cfg.Chunker; (cfg.Owner == nil || cfg.Machine != "") && (c.Min < 0 || c.Min > c.Avg || c.Avg > c.Max || c.Max <= 0 || c.Max > maxChunkSize) {
		return cfg, lostConfig(ctx, st, fmt.Errorf("chunk size bounds %d, %d, %d", c.Min, c.Avg, c.Max))
	}
	return cfg, nil
}

// maxChunkSize bounds the chunker's Max a config may set (new vaults use
// 4 MiB).
const maxChunkSize = 64 << 20

// ChunkerParams are the chunk size bounds every new vault uses.
var ChunkerParams = struct{ Min, Avg, Max int }{256 << 10, 1 << 20, 4 << 20}

// Create makes a new vault in st, protected by pass, and returns it open.
func Create(ctx context.Context, st storage.Storage, pass keys.Passphrase, kdf keys.KDF) (*Area, error) {
	return create(ctx, st, pass, kdf, Config{}, "", nil)
}

// create makes a vault (or a machine's area) whose config extends cfg,
// with a write-only key set for certificate certID when it is set.
// beforeConfig, when set, runs with the new key set just before the config
// is written.
func create(ctx context.Context, st storage.Storage, pass keys.Passphrase, kdf keys.KDF, cfg Config, certID string, beforeConfig func(*keys.KeySet) error) (*Area, error) {
	if err := pass.Check(); err != nil {
		return nil, err
	}
	if _, err := st.Stat(ctx, configName); err == nil {
		return nil, ErrVaultExists
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("create vault: %w", err)
	}
	var rawID [16]byte
	if _, err := rand.Read(rawID[:]); err != nil {
		return nil, fmt.Errorf("create vault: %w", err)
	}
	cfg.Format, cfg.ID, cfg.Created = FormatVersion, hex.EncodeToString(rawID[:]), time.Now().UTC().Truncate(time.Second)
	cfg.Chunker.Min, cfg.Chunker.Avg, cfg.Chunker.Max = ChunkerParams.Min, ChunkerParams.Avg, ChunkerParams.Max
	ks, err := keys.NewKeySet(cfg.ID)
	if err != nil {
		return nil, err
	}
	if certID != "" {
		ks = ks.Epoch(certID)
	} else if err := noteKeyID(ctx, st, ks.NewSealer().KeyID()); err != nil {
		return nil, err
	}
	if err := AddPassphraseSlot(ctx, st, ks, pass, kdf); err != nil {
		return nil, err
	}
	if beforeConfig != nil {
		if err := beforeConfig(ks); err != nil {
			return nil, err
		}
	}
	b, err := EncodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	// The config is written last: a vault exists once it can be opened.
	if err := st.Save(ctx, configName, b); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return nil, ErrVaultExists
		}
		return nil, fmt.Errorf("create vault: %w", err)
	}
	return newArea(st, cfg, ks), nil
}

// AddPassphraseSlot stores a new key slot wrapping ks under pass.
func AddPassphraseSlot(ctx context.Context, st storage.Storage, ks *keys.KeySet, pass keys.Passphrase, kdf keys.KDF) error {
	_, err := addSlot(ctx, st, func(slotID string) (*keys.Slot, error) {
		return keys.NewPassphraseSlot(ks, slotID, pass, kdf)
	})
	return err
}

// ReplacePassphraseSlots wraps ks under a new passphrase and then deletes
// every other slot, so that no earlier passphrase opens ks any more. No data
// is rewritten. It first checks CanReplaceSlots, so that storage
// credentials that may not delete never leave the new slot next to the old
// ones.
func ReplacePassphraseSlots(ctx context.Context, st storage.Storage, ks *keys.KeySet, pass keys.Passphrase, kdf keys.KDF) error {
	if err := CanReplaceSlots(ctx, st); err != nil {
		return err
	}
	kept, err := addSlot(ctx, st, func(slotID string) (*keys.Slot, error) {
		return keys.NewPassphraseSlot(ks, slotID, pass, kdf)
	})
	if err != nil {
		return err
	}
	return deleteSlotsExcept(ctx, st, kept)
}

// deleteProbe is a key slot name that never exists (slot IDs are 16 hex
// digits): deleting it tells whether the storage lets the credentials in
// use delete, and deletes nothing.
const deleteProbe = keysPrefix + "delete-probe"

// CanReplaceSlots fails, wrapping storage.ErrPermission, when the storage
// refuses the credentials in use the deletes of ReplacePassphraseSlots (a
// SAS token for backups, which may not delete). Check it before anything
// that should happen only if the replacement can complete.
func CanReplaceSlots(ctx context.Context, st storage.Storage) error {
	if err := st.Delete(ctx, deleteProbe); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("replace key slots: the storage does not let these credentials delete the old slots: %w", err)
	}
	return nil
}

// deleteSlotsExcept deletes every key slot but keep.
func deleteSlotsExcept(ctx context.Context, st storage.Storage, keep string) error {
	names, err := listNames(ctx, st, keysPrefix)
	if err != nil {
		return err
	}
	for _, n := range names {
		if path.Base(n) == keep {
			continue
		}
		if err := st.Delete(ctx, n); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("remove old key slot: %w", err)
		}
	}
	return nil
}

// addSlot stores the slot newSlot makes under a fresh random slot ID and
// returns that ID.
func addSlot(ctx context.Context, st storage.Storage, newSlot func(slotID string) (*keys.Slot, error)) (string, error) {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("add key slot: %w", err)
	}
	slotID := hex.EncodeToString(raw[:])
	slot, err := newSlot(slotID)
	if err != nil {
		return "", err
	}
	b, err := slot.Marshal()
	if err != nil {
		return "", err
	}
	if err := st.Save(ctx, keysPrefix+slotID, b); err != nil {
		return "", fmt.Errorf("add key slot: %w", err)
	}
	return slotID, nil
}

// Unlock tries pass against every key slot of the vault in st and returns the
// key set it opens.
func Unlock(ctx context.Context, st storage.Storage, pass keys.Passphrase) (*keys.KeySet, error) {
	cfg, err := ReadConfig(ctx, st)
	if err != nil {
		return nil, err
	}
	var ks *keys.KeySet
	err = eachSlot(ctx, st, func(slot *keys.Slot, slotID string) error {
		var err error
		ks, err = slot.Unlock(cfg.ID, slotID, pass)
		return err
	})
	return ks, err
}

// eachSlot calls try with every key slot in st until one succeeds. try
// returns keys.ErrWrongPassphrase to go on. Slots that do not parse or open
// are skipped (another kind of slot, or a damaged one); it fails with
// ErrDamaged only when no slot is usable, else with ErrWrongPassphrase.
func eachSlot(ctx context.Context, st storage.Storage, try func(slot *keys.Slot, slotID string) error) error {
	names, err := listNames(ctx, st, keysPrefix)
	if err != nil {
		return fmt.Errorf("list key slots: %w", err)
	}
	if len(names) == 0 {
		return fmt.Errorf("unlock: %w: no key slots", ErrDamaged)
	}
	var unusable []error
	for _, name := range names {
		slotID := path.Base(name)
		b, err := st.Load(ctx, name, 0, -1)
		if err != nil {
			return fmt.Errorf("read key slot: %w", err)
		}
		slot, err := keys.ParseSlot(b)
		if err == nil {
			err = try(slot, slotID)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, keys.ErrWrongPassphrase):
		default:
			unusable = append(unusable, fmt.Errorf("key slot %s: %w", slotID, err))
		}
	}
	if len(unusable) == len(names) {
		return fmt.Errorf("unlock: %w: no usable key slot: %w", ErrDamaged, errors.Join(unusable...))
	}
	return keys.ErrWrongPassphrase
}

// Open opens the vault in st with its key set.
func Open(ctx context.Context, st storage.Storage, ks *keys.KeySet) (*Area, error) {
	cfg, err := ReadConfig(ctx, st)
	if err != nil {
		return nil, err
	}
	if err := ks.Validate(); err != nil {
		return nil, err
	}
	if ks.Vault != cfg.ID {
		return nil, fmt.Errorf("%w (vault %s, keys for %s)", ErrForeignVault, cfg.ID, ks.Vault)
	}
	v := newArea(st, cfg, ks)
	if err := v.noteForeignKeys(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// keyIDsPrefix holds an empty marker per data key a machine's area has
// content under (besides its sessions, which name theirs): a reader that
// lacks one of them knows the objects under it are another key's, not
// damage.
const keyIDsPrefix = "keyids/"

func noteKeyID(ctx context.Context, st storage.Storage, keyID [8]byte) error {
	if err := st.Save(ctx, keyIDsPrefix+hex.EncodeToString(keyID[:]), nil); err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("record data key: %w", err)
	}
	return nil
}

// noteForeignKeys records every data key the area has content under that
// this vault does not hold (a machine switched to certificate mode has
// points under its passphrase-mode key and under session keys): their
// objects are skipped as another key's, not reported as damaged.
func (v *Area) noteForeignKeys(ctx context.Context) error {
	for _, prefix := range []string{keyIDsPrefix, sessionsPrefix} {
		names, err := v.list(ctx, prefix)
		if err != nil {
			return err
		}
		for _, n := range names {
			id, ok := keyIDOf(n)
			if !ok {
				continue
			}
			if !v.open.Has(id) {
				v.open.AddForeign(id)
			}
		}
	}
	return nil
}

// keyIDOf returns the key ID an object under keyIDsPrefix or sessionsPrefix
// is named by (16 hex digits), and false for any other name.
func keyIDOf(name string) ([8]byte, bool) {
	raw, err := hex.DecodeString(path.Base(name))
	if err != nil || len(raw) != 8 {
		return [8]byte{}, false
	}
	return [8]byte(raw), true
}

func newArea(st storage.Storage, cfg Config, ks *keys.KeySet) *Area {
	v := &Area{st: st, cfg: cfg, keys: ks, open: keys.NewOpeners(), meta: ks.NewIndexSealer(), idx: index.New()}
	if !ks.WriteOnly() {
		v.sealer = ks.NewSealer()
		v.open.Add(v.sealer)
	}
	return v
}

// Config returns the vault's configuration.
func (v *Area) Config() Config { return v.cfg }

// ID returns the vault's ID.
func (v *Area) ID() string { return v.cfg.ID }

// Keys returns the vault's key set.
func (v *Area) Keys() *keys.KeySet { return v.keys }

// Storage returns the storage the vault lives in.
func (v *Area) Storage() storage.Storage { return v.st }

// Index returns the in-memory index (empty until LoadIndex).
func (v *Area) Index() *index.Index { return v.idx }

// isIndexKind reports whether objects of kind are sealed under the index
// key rather than a data key.
func isIndexKind(kind keys.Kind) bool {
	return kind == keys.KindIndex || kind == keys.KindTrailer || kind == keys.KindTombstone || kind == keys.KindDamage
}

// ErrWriteOnly reports content a write-only (certificate-mode) machine
// cannot read, or a write before its backup session started.
var ErrWriteOnly = errkind.New(errkind.Permission, "this machine holds only the vault's certificate: it can back up but not read points (recovery needs the certificate's private key)")

// sealerFor returns the sealer that seals new objects of kind.
func (v *Area) sealerFor(kind keys.Kind) (*keys.Sealer, error) {
	if isIndexKind(kind) {
		return v.meta, nil
	}
	if v.sealer == nil {
		return nil, ErrWriteOnly
	}
	return v.sealer, nil
}

func dataName(id keys.ID) string {
	s := id.String()
	return dataPrefix + s[:2] + "/" + s
}

// parseObjectName returns the ID at the end of an object name.
func parseObjectName(name string) (keys.ID, error) {
	return keys.ParseID(name[strings.LastIndexByte(name, '/')+1:])
}

// ioParallelism bounds concurrent storage requests.
var ioParallelism = max(8, 4*runtime.GOMAXPROCS(0))

// LoadIndex reads every index file into the in-memory index, and applies
// the vault's damage records to it (see damagePrefix). Index files
// that fail to authenticate or decode are skipped and reported in an error
// wrapping ErrDamaged (the index is complete again once the packs they
// covered are adopted from their trailers); other errors are fatal. An
// index file that disappears between the listing and its load was
// superseded by a prune, which saved its successor first: it is skipped,
// and its packs are adopted like orphans.
func (v *Area) LoadIndex(ctx context.Context) error {
	names, err := v.list(ctx, IndexPrefix)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var damaged []error
	err = par.Each(ctx, names, ioParallelism, func(ctx context.Context, name string) error {
		f, err := v.readIndexFile(ctx, name)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if errors.Is(err, ErrDamaged) {
			mu.Lock()
			damaged = append(damaged, err)
			mu.Unlock()
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range f.Packs {
			v.idx.AddPack(p.Pack, p.Entries)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := v.ApplyDamageRecords(ctx); err != nil {
		return err
	}
	return errors.Join(damaged...)
}

// ReadIndexFile reads and authenticates index file id. A file that fails is
// ErrDamaged; one that is gone wraps storage.ErrNotFound.
func (v *Area) ReadIndexFile(ctx context.Context, id keys.ID) (*index.File, error) {
	return v.readIndexFile(ctx, IndexPrefix+id.String())
}

func (v *Area) readIndexFile(ctx context.Context, name string) (*index.File, error) {
	id, err := parseObjectName(name)
	if err != nil {
		return nil, fmt.Errorf("index file %s: %w: bad name", name, ErrDamaged)
	}
	// Index files are immutable: the vault's cache may hold them.
	plain, err := v.loadCached(ctx, v.cache, "index-"+id.String(), name, keys.KindIndex, id)
	if err != nil {
		return nil, err
	}
	f, err := index.DecodeFile(plain)
	if err != nil {
		return nil, fmt.Errorf("index file %s: %w: %w", id.Short(), ErrDamaged, err)
	}
	return f, nil
}

func (v *Area) list(ctx context.Context, prefix string) ([]string, error) {
	return listNames(ctx, v.st, prefix)
}

// listNames returns the names of the objects under prefix.
func listNames(ctx context.Context, st storage.Storage, prefix string) ([]string, error) {
	var names []string
	err := st.List(ctx, prefix, func(fi storage.Info) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return names, nil
}

// sized reports whether the object name, found to exist when saving the
// n bytes its name derives from, has their size. It holds them then, unless
// the storage damaged them; of another size, it is what a broken storage
// kept of a failed attempt (Save is atomic only by contract), and relying
// on it would commit data that did not land. A storage that refuses the
// Stat (a create-only credential) is trusted as before.
func (v *Area) sized(ctx context.Context, name string, n int) bool {
	fi, err := v.st.Stat(ctx, name)
	return err == nil && fi.Size == int64(n) || errors.Is(err, storage.ErrPermission)
}

// maxTreePart bounds the decoded size of a tree part (the zstd decoder's
// memory bound is the same).
const maxTreePart = 64 << 20

// LoadBlob returns the plaintext of an indexed blob. It tries the blob's
// copies in the index's order (see index.Index) and falls back to the next
// on a copy that is missing or does not authenticate; such copies are noted
// as bad (see damagePrefix). The blob is damaged only when every copy is.
func (v *Area) LoadBlob(ctx context.Context, kind keys.Kind, id keys.ID) ([]byte, error) {
	return v.LoadBlobInto(ctx, nil, kind, id)
}

// LoadBlobInto is LoadBlob for a reader that recycles its buffers (the
// mount's chunk cache): the plaintext is appended to dst, decoded into its
// room when that suffices, as OpenBlobInto does; with a nil dst it is
// LoadBlob.
func (v *Area) LoadBlobInto(ctx context.Context, dst []byte, kind keys.Kind, id keys.ID) ([]byte, error) {
	return v.loadBlobInto(ctx, dst, kind, id, nil)
}

// loadBlobInto is LoadBlobInto; with decoded set, a compressed blob's
// plaintext is handed to decoded by prefixes as it is decoded into dst's
// room, once the copy it comes from is authenticated
// (pack.DecodePayloadSteps).
func (v *Area) loadBlobInto(ctx context.Context, dst []byte, kind keys.Kind, id keys.ID, decoded func(prefix []byte)) ([]byte, error) {
	locs := v.idx.Locations(id)
	if len(locs) == 0 {
		return nil, fmt.Errorf("load %s %s: %w: not in the index", kind, id.Short(), ErrDamaged)
	}
	if locs[0].Kind != kind {
		// The caller's mistake or a damaged tree, not a bad copy: every
		// copy is of the kind its ID was hashed as.
		return nil, fmt.Errorf("load %s %s: %w: indexed as %s", kind, id.Short(), ErrDamaged, locs[0].Kind)
	}
	var failed []error
	for _, loc := range locs {
		plain, err := v.loadCopy(ctx, dst, kind, id, loc, decoded)
		if !isBadCopy(err) {
			return plain, err
		}
		v.NoteBadCopy(id, loc.Pack)
		failed = append(failed, err)
	}
	if len(failed) == 1 {
		if errors.Is(failed[0], ErrDamaged) {
			return nil, failed[0]
		}
		// The only copy's pack is gone: damage, not a passing failure.
		return nil, fmt.Errorf("%w: %w", ErrDamaged, failed[0])
	}
	return nil, fmt.Errorf("load %s %s: %w: every copy (%d) is missing or damaged: %w", kind, id.Short(), ErrDamaged, len(failed), errors.Join(failed...))
}

// isBadCopy reports whether err, from loading one copy of a blob, means
// that copy is missing or damaged (another copy may do).
func isBadCopy(err error) bool {
	return errors.Is(err, ErrDamaged) || errors.Is(err, storage.ErrNotFound)
}

// loadCopy appends the plaintext of the copy of a blob at loc to dst (as
// OpenBlobInto), handing decoded its prefixes (loadBlobInto) unless
// decoded is nil.
func (v *Area) loadCopy(ctx context.Context, dst []byte, kind keys.Kind, id keys.ID, loc index.Location, decoded func(prefix []byte)) ([]byte, error) {
	if v.segments != nil {
		if plain, ok, err := v.segments.loadBlob(ctx, dst, kind, id, loc); ok {
			return plain, err
		}
	}
	if v.cache == nil {
		return v.fetchBlob(ctx, dst, kind, id, loc, false, decoded)
	}
	key := id.String()
	if sealed, ok := v.cache.Get(key); ok {
		if len(sealed) == int(loc.Length) {
			plain, err := v.openBlobInto(dst, kind, id, sealed, decoded)
			if !errors.Is(err, ErrDamaged) {
				return plain, err // opened, or not this reader's (another key)
			}
		}
		v.cache.Remove(key) // truncated or damaged: the storage's copy instead
	}
	plain, err := v.fetchBlob(ctx, dst, kind, id, loc, true, decoded)
	if errors.Is(err, ErrDamaged) {
		v.cache.Remove(key)
	}
	return plain, err
}

// fetchBlob loads a blob from its pack in the storage and opens it into dst
// (as OpenBlobInto); with cache set, it keeps the sealed bytes in the
// vault's cache first (opening overwrites them).
//
// With dst set (a reader that recycles its buffers) and no cache, the
// sealed bytes are read into a buffer of sealedBuffers, which the plaintext
// never points into then, and handed back after opening; or, when dst's
// room holds them and the blob is likely uncompressed, into dst's room
// (fetchInPlace). decoded, when set, gets the plaintext's prefixes
// (loadBlobInto).
func (v *Area) fetchBlob(ctx context.Context, dst []byte, kind keys.Kind, id keys.ID, loc index.Location, cache bool, decoded func(prefix []byte)) ([]byte, error) {
	var sealed []byte
	var err error
	if len(dst) == 0 && cap(dst) >= int(loc.Length) && 2*int(loc.Length) > cap(dst) && !cache {
		return v.fetchInPlace(ctx, dst, kind, id, loc, decoded)
	}
	if dst != nil && !cache {
		bp := sealedBuffers.Get().(*[]byte)
		defer func() { sealedBuffers.Put(bp) }()
		sealed, err = storage.LoadInto(ctx, v.st, (*bp)[:0], dataName(loc.Pack), int64(loc.Offset), int64(loc.Length))
		if cap(sealed) > cap(*bp) {
			*bp = sealed // grown: keep the larger one
		}
	} else {
		sealed, err = v.st.Load(ctx, dataName(loc.Pack), int64(loc.Offset), int64(loc.Length))
	}
	if err != nil {
		return nil, packRangeError(fmt.Sprintf("load %s %s", kind, id.Short()), loc.Pack, err)
	}
	if len(sealed) != int(loc.Length) {
		return nil, fmt.Errorf("load %s %s: %w: pack %s is truncated", kind, id.Short(), ErrDamaged, loc.Pack.Short())
	}
	if cache {
		v.cache.Put(id.String(), sealed)
	}
	return v.openBlobInto(dst, kind, id, sealed, decoded)
}

// fetchInPlace is fetchBlob reading the sealed bytes into the room of dst
// (empty, with room for them) and opening them there: the plaintext of an
// uncompressed blob (most of a blob's size when it fills most of dst: the
// chunks of data that does not compress) is then a subslice of dst's room,
// neither copied nor allocated; a compressed one is copied out into a
// buffer of sealedBuffers and decoded into dst.
func (v *Area) fetchInPlace(ctx context.Context, dst []byte, kind keys.Kind, id keys.ID, loc index.Location, decoded func(prefix []byte)) ([]byte, error) {
	sealed, err := storage.LoadInto(ctx, v.st, dst, dataName(loc.Pack), int64(loc.Offset), int64(loc.Length))
	if err != nil {
		return nil, packRangeError(fmt.Sprintf("load %s %s", kind, id.Short()), loc.Pack, err)
	}
	if len(sealed) != int(loc.Length) {
		return nil, fmt.Errorf("load %s %s: %w: pack %s is truncated", kind, id.Short(), ErrDamaged, loc.Pack.Short())
	}
	payload, err := v.openSealed(kind, id, sealed)
	if err != nil {
		return nil, err
	}
	if pack.Uncompressed(payload) {
		return v.decodePayload(nil, kind, id, payload, nil)
	}
	bp := sealedBuffers.Get().(*[]byte)
	defer sealedBuffers.Put(bp)
	*bp = append((*bp)[:0], payload...)
	return v.decodePayload(dst, kind, id, *bp, decoded)
}

// sealedBuffers holds the buffers fetchBlob reads sealed blobs into for a
// reader that recycles its plaintext buffers.
var sealedBuffers = sync.Pool{New: func() any { return new([]byte) }}

// partBuffers holds the buffers Part decodes tree parts' plaintexts into,
// one per core, none larger than maxKeptPartBuffer. They start with room
// (a non-nil buffer is what makes LoadBlobInto decode into it) for the
// parts of most directories.
var partBuffers = freelist.New(runtime.GOMAXPROCS(0), func() *[]byte {
	b := make([]byte, 0, 64<<10)
	return &b
})

// maxKeptPartBuffer is the largest buffer partBuffers keeps: the rare
// larger part (up to maxTreePart) allocates its own.
const maxKeptPartBuffer = 1 << 20

// packRangeError wraps err, from loading a range of pack id for what: a
// range beyond the pack's end means a pack shorter than its index or
// trailer says, which is damage, not a failure of the storage.
func packRangeError(what string, id keys.ID, err error) error {
	if errors.Is(err, storage.ErrRange) {
		return fmt.Errorf("%s: %w: pack %s is shorter than indexed: %w", what, ErrDamaged, id.Short(), err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// OpenBlob authenticates a sealed blob read from a pack and returns its
// plaintext. It decrypts in place: sealed is overwritten, and the plaintext
// of a raw (uncompressed) blob is a subslice of it.
func (v *Area) OpenBlob(kind keys.Kind, id keys.ID, sealed []byte) ([]byte, error) {
	return v.OpenBlobInto(nil, kind, id, sealed)
}

// Chunk returns the content of a chunk.
func (v *Area) Chunk(ctx context.Context, id keys.ID) ([]byte, error) {
	return v.LoadBlob(ctx, keys.KindData, id)
}

// ChunkInto appends the content of a chunk to dst, decoding it into dst's
// room when that suffices (LoadBlobInto).
func (v *Area) ChunkInto(ctx context.Context, dst []byte, id keys.ID) ([]byte, error) {
	return v.LoadBlobInto(ctx, dst, keys.KindData, id)
}

// ChunkIntoSteps is ChunkInto for a reader that serves a chunk as it is
// decoded (the mount): once the chunk is authenticated, a compressed one
// is decoded into dst's room block by block, and decoded gets each longer
// prefix of the result that is final (pack.DecodePayloadSteps), so that a
// read of a few KiB waits for the blocks up to its range, not for the
// whole chunk. decoded may not be called at all (an uncompressed or small
// chunk, one read through a pack segment), and an error may follow its
// calls (a frame that fails to decode after its tag verified: only a
// faulty writer makes one).
func (v *Area) ChunkIntoSteps(ctx context.Context, dst []byte, id keys.ID, decoded func(prefix []byte)) ([]byte, error) {
	return v.loadBlobInto(ctx, dst, keys.KindData, id, decoded)
}

// Part returns a decoded tree part. Its plaintext is decoded into a
// buffer of partBuffers (and, as LoadBlobInto does for a reader that
// recycles its buffers, the sealed bytes read into one of sealedBuffers):
// DecodePart copies what it keeps, so a mount listing a tree allocates
// neither per part.
func (v *Area) Part(ctx context.Context, id keys.ID) (*tree.Part, error) {
	bp := partBuffers.Get()
	plain, err := v.LoadBlobInto(ctx, (*bp)[:0], keys.KindTree, id)
	if cap(plain) > cap(*bp) {
		*bp = plain // grown: keep the larger one
	}
	defer func() {
		if cap(*bp) <= maxKeptPartBuffer {
			partBuffers.Put(bp)
		}
	}()
	if err != nil {
		return nil, err
	}
	p, err := tree.DecodePart(plain)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w: %w", id.Short(), ErrDamaged, err)
	}
	return p, nil
}

// LoadPack returns the whole pack id as stored.
func (v *Area) LoadPack(ctx context.Context, id keys.ID) ([]byte, error) {
	b, err := v.st.Load(ctx, dataName(id), 0, -1)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	return b, nil
}

// PackTrailer reads and authenticates the trailer of the pack id.
func (v *Area) PackTrailer(ctx context.Context, id keys.ID) ([]pack.Entry, int64, error) {
	name := dataName(id)
	fi, err := v.st.Stat(ctx, name)
	if err != nil {
		return nil, 0, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	if fi.Size < pack.FooterLen {
		return nil, fi.Size, fmt.Errorf("pack %s: %w: %d bytes is too short", id.Short(), ErrDamaged, fi.Size)
	}
	foot, err := v.st.Load(ctx, name, fi.Size-pack.FooterLen, pack.FooterLen)
	if err != nil {
		return nil, fi.Size, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	f, err := pack.DecodeFooter(foot, fi.Size)
	if err != nil {
		return nil, fi.Size, fmt.Errorf("pack %s: %w: %w", id.Short(), ErrDamaged, err)
	}
	sealed, err := v.st.Load(ctx, name, fi.Size-pack.FooterLen-int64(f.TrailerLen), int64(f.TrailerLen))
	if err != nil {
		return nil, fi.Size, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	entries, err := pack.OpenTrailer(v.meta, f, sealed, fi.Size)
	if err != nil {
		return nil, fi.Size, fmt.Errorf("pack %s: %w: %w", id.Short(), ErrDamaged, err)
	}
	return entries, fi.Size, nil
}

// ListPacks returns the IDs of all packs in the storage.
func (v *Area) ListPacks(ctx context.Context) ([]keys.ID, error) {
	sizes, err := v.packSizes(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]keys.ID, 0, len(sizes))
	for id := range sizes {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b keys.ID) int { return bytes.Compare(a[:], b[:]) })
	return ids, nil
}

// packSizes lists the packs in the storage with their sizes.
func (v *Area) packSizes(ctx context.Context) (map[keys.ID]int64, error) {
	sizes := make(map[keys.ID]int64)
	err := v.PackSizes(ctx, func(id keys.ID, size int64) { sizes[id] = size })
	return sizes, err
}

// AdoptOrphanPacks indexes packs that no index file covers (a backup that
// was interrupted, or a damaged index file) from their trailers, so their
// blobs are found and reused instead of uploaded again. With persist it
// writes an index file for them; without, it only fills the in-memory index
// (for read-only users such as check and the mount). It returns how many
// packs it adopted. Packs whose trailer does not authenticate, or that
// disappear meanwhile (a prune deleted them), are left alone.
func (v *Area) AdoptOrphanPacks(ctx context.Context, persist bool) (int, error) {
	n, _, err := v.AdoptOrphanPacksExcept(ctx, persist, nil)
	return n, err
}

// AdoptOrphanPacksExcept is AdoptOrphanPacks leaving alone the orphans skip
// names (a backup skips the packs a prune is about to delete). It also
// returns the packs the loaded index names that the storage does not hold
// (listed after the index was loaded, so they were deleted since their index
// file was written; a prune deleted them).
//
// The listing also tells which indexed packs are gone or stored shorter
// than indexed: their copies are noted as bad (see damagePrefix), so that
// reads try other copies first and backups store the blobs again.
func (v *Area) AdoptOrphanPacksExcept(ctx context.Context, persist bool, skip func(keys.ID) bool) (adopted int, missing []keys.ID, err error) {
	sizes, err := v.packSizes(ctx)
	if err != nil {
		return 0, nil, err
	}
	var orphans []keys.ID
	for id := range sizes {
		if !v.idx.HasPack(id) && (skip == nil || !skip(id)) {
			orphans = append(orphans, id)
		}
	}
	for _, id := range v.idx.Packs() {
		if _, ok := sizes[id]; !ok {
			missing = append(missing, id)
			v.notePackGone(id)
		}
	}
	v.noteTruncatedPacks(sizes)
	if len(orphans) == 0 {
		return 0, missing, nil
	}
	var mu sync.Mutex
	var file index.File
	err = par.Each(ctx, orphans, ioParallelism, func(ctx context.Context, id keys.ID) error {
		entries, _, err := v.PackTrailer(ctx, id)
		if errors.Is(err, ErrDamaged) || errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		mu.Lock()
		file.Packs = append(file.Packs, index.PackBlobs{Pack: id, Entries: entries})
		mu.Unlock()
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	if len(file.Packs) == 0 {
		return 0, missing, nil
	}
	if !persist {
		for _, p := range file.Packs {
			v.idx.AddPack(p.Pack, p.Entries)
		}
		return len(file.Packs), missing, nil
	}
	if err := v.saveIndexFile(ctx, &file); err != nil {
		return 0, nil, err
	}
	return len(file.Packs), missing, nil
}

func (v *Area) saveIndexFile(ctx context.Context, f *index.File) error {
	if _, err := v.SaveObject(ctx, IndexPrefix, keys.KindIndex, f.Encode()); err != nil {
		return err
	}
	for _, p := range f.Packs {
		v.idx.AddPack(p.Pack, p.Entries)
	}
	return nil
}
