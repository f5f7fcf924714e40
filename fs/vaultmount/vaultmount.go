// Package vaultmount mounts recovery points of a vault, as azmount does:
// it opens the machine's area for reading (package open, with every trust
// check), gives it a disk cache of fetched blobs, selects the points to
// serve, builds the file system (package fs) and mounts it; once the
// mount ends, Close stores what reads found damaged and closes the vault
// and the cache. The command keeps flags, signals and printing.
package vaultmount

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/azfs/azfs/cache/diskcache"
	azfs "github.com/azfs/azfs/fs"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/open"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/location"
)

// BlobDiskCache is the disk cache of a mount of a vault in a blob
// container when Options.DiskBytes leaves it to the location. A vault in a
// directory gets none: the cache would copy local files.
const BlobDiskCache = 4 << 30

// Options say what to mount and how.
type Options struct {
	// Target is the vault and machine whose points to mount.
	Target open.Target
	// Point selects the one point to mount (repo.SelectPoint); "": every
	// point, as <machine>/<time>.
	Point string
	// Tags, when it filters, serves only the points with those tags (Point
	// selects among them).
	Tags repo.TagFilter
	// DiskBytes is the disk cache's bound; 0: none; negative: chosen by the
	// vault's location (BlobDiskCache for a blob container, else none).
	DiskBytes int64
	// FS are the file system's options (its Logger receives warnings).
	FS azfs.Options
}

// Mounted is a mount of a vault's points.
type Mounted struct {
	*fuse.Server
	// Reading is the area the points are read from.
	Reading *open.Reading
	// Points are the points served.
	Points []*repo.Point
	cache  *diskcache.Cache
	logger *slog.Logger
}

// Mount opens the area opts.Target names for reading, selects the points
// and mounts them read-only at mountpoint (fs.Mount). The caller waits
// for the server (Wait), unmounts it, and calls Close.
func Mount(ctx context.Context, mountpoint string, opts Options) (*Mounted, error) {
	logger := opts.FS.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Mounted{logger: logger}
	_, _, segmentBytes := azfs.MemoryShares(opts.FS.CacheBytes)
	r, err := open.ForReading(ctx, opts.Target, open.ReadOptions{
		SegmentBytes: segmentBytes,
		Prepare:      func(o *open.Opened) { m.prepare(o, opts.DiskBytes) },
		Warn:         func(msg string) { logger.Warn(msg) },
	})
	if err != nil {
		m.closeCache()
		return nil, err
	}
	m.Reading = r
	if err := m.mount(mountpoint, opts); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// prepare readies the area o opened before anything of it is read: the
// damage reads find is remembered in the vault as found, for the next
// backup to store again, and fetched blobs go through a disk cache.
func (m *Mounted) prepare(o *open.Opened, diskBytes int64) {
	o.Area.SaveDamageAsFound()
	if diskBytes < 0 {
		diskBytes = 0
		if location.IsBlob(o.Location) {
			diskBytes = BlobDiskCache
		}
	}
	if diskBytes == 0 {
		return
	}
	dc, err := openDiskCache(o, diskBytes, m.logger)
	if err != nil {
		m.logger.Warn("mounting without a disk cache", "err", err)
		return
	}
	m.cache = dc
	o.Area.SetCache(dc)
}

// mount selects the points to serve and mounts them at mountpoint.
func (m *Mounted) mount(mountpoint string, opts Options) error {
	r := m.Reading
	var err error
	if r.Live, err = opts.Tags.Matching(r.Live); err != nil {
		return err
	}
	m.Points = r.Live
	if opts.Point != "" {
		p, err := r.Point(opts.Point)
		if err != nil {
			return err
		}
		m.Points = []*repo.Point{p}
	}
	fsOpts := opts.FS
	fsOpts.NoXattrs = true
	fsPoints := make([]azfs.Point, len(m.Points))
	for i, p := range m.Points {
		fsPoints[i] = azfs.Point{ID: p.ID, Machine: p.Machine, Time: p.Time, Root: p.Root}
		if p.Stats.Xattrs > 0 {
			fsOpts.NoXattrs = false
		}
	}
	var root gofs.InodeEmbedder
	if opts.Point != "" {
		root, err = azfs.NewPointRoot(r.Area, fsPoints[0], fsOpts)
	} else {
		root, err = azfs.NewAllPointsRoot(r.Area, fsPoints, fsOpts)
	}
	if err != nil {
		return err
	}
	m.Server, err = azfs.Mount(mountpoint, root, fsOpts)
	return err
}

// Close ends what the mount kept open once it is unmounted: the vault's
// files kept open for reading, the damage the reads found and the
// background save has not stored yet (within 30 seconds; restore
// credentials may not write), the disk cache. Failures are logged.
func (m *Mounted) Close() {
	if r := m.Reading; r != nil {
		if err := storage.Close(r.Storage); err != nil {
			m.logger.Warn("closing the vault", "err", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := r.Area.SaveDamage(ctx); err != nil && !errors.Is(err, storage.ErrPermission) {
			m.logger.Warn("cannot remember the damage reads found in the vault; run azfs check to find it again", "err", err)
		}
		cancel()
	}
	m.closeCache()
}

// openDiskCache opens the disk cache of the machine area o has open:
// <azfs cache dir>/<area id>/blobs-<machine>, beside the backups' file cache.
func openDiskCache(o *open.Opened, maxBytes int64, logger *slog.Logger) (*diskcache.Cache, error) {
	root, err := keyring.CacheDir()
	if err != nil {
		return nil, err
	}
	return diskcache.Open(filepath.Join(root, o.Area.ID(), "blobs-"+o.Machine), diskcache.Options{
		MaxBytes: maxBytes,
		OnPutError: func(err error) {
			logger.Warn("disk cache: cannot store fetched data; reads go on without it (further failures are not logged)", "err", err)
		},
	})
}

// closeCache closes the disk cache, if any, and logs what it did.
func (m *Mounted) closeCache() {
	dc := m.cache
	if dc == nil {
		return
	}
	m.cache = nil
	s := dc.Stats()
	m.logger.Debug("disk cache", "hits", s.Hits, "misses", s.Misses, "stored", s.Puts, "evicted", s.Evictions,
		"store_errors", s.PutErrors, "objects", s.Objects, "bytes", s.Bytes)
	if err := dc.Close(); err != nil {
		m.logger.Warn("disk cache", "err", err)
	}
}
