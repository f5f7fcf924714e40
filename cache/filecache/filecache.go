// Package filecache remembers, per machine and vault, what each backed-up file
// looked like (size, mtime, ctime, inode, device) and the chunks its content
// became, so that an unchanged file is not read again. It lives in a badger
// database under the user's cache directory; deleting it only costs speed.
package filecache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/keys"
)

// Record is what the cache knows about one file.
type Record struct {
	Size         uint64
	MTime, CTime int64
	Inode        uint64
	Device       uint64
	Extents      []Extent
}

// Extent is one chunk of a file's content: what a backup stores as a
// tree.Extent (same fields, so either converts to the other), kept here so
// that the cache needs nothing of the vault's formats.
type Extent struct {
	Offset uint64  // offset in the file
	Length uint32  // length of the chunk
	ID     keys.ID // the chunk
}

// Matches reports whether the file still looks as recorded.
func (r *Record) Matches(size uint64, mtime, ctime int64, inode, device uint64) bool {
	return r.Size == size && r.MTime == mtime && r.CTime == ctime && r.Inode == inode && r.Device == device
}

// Reserve is the free space a cache's file system must keep. Badger writes
// through memory-mapped sparse files, and a write into one on a full file
// system kills the process (SIGBUS) instead of failing; so Open refuses a
// cache with less free space, and a batch stops writing below it.
const Reserve = 64 << 20

// ErrLowSpace is returned when the cache's file system has less free space
// than Reserve.
var ErrLowSpace = errors.New("less than 64 MiB free on its file system")

// putsPerCheck is how many puts a batch makes between two checks of the free
// space; they write a few KiB each, far less than Reserve.
const putsPerCheck = 64

// Cache is an open change-detection database.
type Cache struct {
	db  *badger.DB
	dir string
}

// Open opens (creating if needed) the database in dir. The database is tuned
// small: a backup's memory budget is shared with the pipeline. It fails with
// ErrLowSpace when dir's file system has less than Reserve free.
func Open(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open file cache: %w", err)
	}
	if err := checkSpace(dir); err != nil {
		return nil, fmt.Errorf("open file cache %s: %w", dir, err)
	}
	opts := badger.DefaultOptions(dir).
		WithLogger(nil).
		WithMemTableSize(8 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBlockCacheSize(16 << 20).
		WithIndexCacheSize(8 << 20).
		WithValueLogFileSize(64 << 20).
		WithValueThreshold(1 << 10).
		WithNumCompactors(2).
		WithCompactL0OnClose(false)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open file cache %s: %w", dir, err)
	}
	return &Cache{db: db, dir: dir}, nil
}

// checkSpace returns ErrLowSpace when dir's file system has less than
// Reserve free for unprivileged users.
func checkSpace(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	if st.Bavail*uint64(st.Bsize) < Reserve {
		return ErrLowSpace
	}
	return nil
}

// Close closes the database.
func (c *Cache) Close() error {
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("close file cache: %w", err)
	}
	return nil
}

// Get returns the record for path, if any. A record that does not decode is
// treated as missing.
func (c *Cache) Get(path string) (*Record, bool) {
	var rec *Record
	_ = c.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(path))
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			r, err := decode(v)
			if err == nil {
				rec = r
			}
			return err
		})
	})
	return rec, rec != nil
}

// Batch collects updates and writes them in large transactions.
type Batch struct {
	wb   *badger.WriteBatch
	dir  string
	puts atomic.Uint64
}

// NewBatch starts a batch of updates.
func (c *Cache) NewBatch() *Batch { return &Batch{wb: c.db.NewWriteBatch(), dir: c.dir} }

// Put records path. It is safe for concurrent use. Every putsPerCheck puts
// it checks the free space first, and fails with ErrLowSpace below Reserve:
// the caller should then Cancel the batch and stop putting.
func (b *Batch) Put(path string, r *Record) error {
	if b.puts.Add(1)%putsPerCheck == 1 {
		if err := checkSpace(b.dir); err != nil {
			return fmt.Errorf("file cache put: %w", err)
		}
	}
	if err := b.wb.Set([]byte(path), encode(r)); err != nil {
		return fmt.Errorf("file cache put: %w", err)
	}
	return nil
}

// Flush writes everything put so far.
func (b *Batch) Flush() error {
	if err := b.wb.Flush(); err != nil {
		return fmt.Errorf("file cache flush: %w", err)
	}
	return nil
}

// Cancel drops the batch's unwritten updates.
func (b *Batch) Cancel() { b.wb.Cancel() }

var errFormat = errors.New("malformed file cache record")

func encode(r *Record) []byte {
	b := make([]byte, 0, 48+len(r.Extents)*44)
	b = binary.AppendUvarint(b, r.Size)
	b = binary.AppendVarint(b, r.MTime)
	b = binary.AppendVarint(b, r.CTime)
	b = binary.AppendUvarint(b, r.Inode)
	b = binary.AppendUvarint(b, r.Device)
	b = binary.AppendUvarint(b, uint64(len(r.Extents)))
	for _, e := range r.Extents {
		b = binary.AppendUvarint(b, e.Offset)
		b = binary.AppendUvarint(b, uint64(e.Length))
		b = append(b, e.ID[:]...)
	}
	return b
}

func decode(b []byte) (*Record, error) {
	var r Record
	var bad bool
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	sv := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	r.Size, r.MTime, r.CTime, r.Inode, r.Device = uv(), sv(), sv(), uv(), uv()
	n := uv()
	if bad || n > uint64(len(b)/34) {
		return nil, errFormat
	}
	r.Extents = make([]Extent, 0, n)
	for range n {
		e := Extent{Offset: uv(), Length: uint32(uv())}
		if bad || len(b) < len(keys.ID{}) {
			return nil, errFormat
		}
		copy(e.ID[:], b)
		b = b[len(e.ID):]
		r.Extents = append(r.Extents, e)
	}
	return &r, nil
}
