package repo

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/internal/par"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage"
)

// Point is a recovery point: one committed backup run.
type Point struct {
	// ID is the keyed hash of the point's plaintext; set when loaded or saved.
	ID       keys.ID   `json:"-"`
	Version  int       `json:"version"`
	Machine  string    `json:"machine"`
	Hostname string    `json:"hostname"`
	Time     time.Time `json:"time"`
	Paths    []string  `json:"paths"`
	// SetName names the backup set the point belongs to ('azfs backup
	// --set NAME'); empty for a point of the set of its paths (see Set).
	SetName string `json:"set,omitempty"`
	// Tags are the labels given at backup ('azfs backup --tag T'), sorted,
	// each once (NormalizeTags); nil for a point without (every point made
	// before tags existed).
	Tags []string `json:"tags,omitempty"`
	// Root is a tree part holding one directory node named "root" whose
	// listing is the point's top level.
	Root    keys.ID    `json:"root"`
	Partial bool       `json:"partial,omitempty"`
	Stats   PointStats `json:"stats"`
}

// PointStats summarises a backup run.
type PointStats struct {
	Files          uint64        `json:"files"`
	Dirs           uint64        `json:"dirs"`
	Others         uint64        `json:"others"`
	FilesNew       uint64        `json:"files_new"`
	FilesChanged   uint64        `json:"files_changed"`
	FilesUnchanged uint64        `json:"files_unchanged"`
	Errors         uint64        `json:"errors"`
	Bytes          uint64        `json:"bytes"`        // logical size of all files
	BytesRead      uint64        `json:"bytes_read"`   // read from disk in this run
	BytesStored    uint64        `json:"bytes_stored"` // added to the vault
	Xattrs         uint64        `json:"xattrs"`       // entries carrying xattrs
	Duration       time.Duration `json:"duration_ns"`
	// ChangedWhileRead counts the files that kept changing while they were
	// read: they hold what the last read saw (tree.Node.Changed).
	ChangedWhileRead uint64 `json:"changed_while_read,omitempty"`
	// Vanished counts the entries deleted between the listing of their
	// directory and their reading: not in the point, and not errors.
	Vanished uint64 `json:"vanished,omitempty"`
	// BlobsStoredAgain counts blobs the vault had but stored again: every
	// copy was missing or damaged (the points that need them read the new
	// copy from then on) or in a pack a prune is deleting.
	BlobsStoredAgain uint64 `json:"blobs_stored_again,omitempty"`
	// BlobsVerified counts reused blobs read back and authenticated
	// (backup --verify-reused).
	BlobsVerified uint64 `json:"blobs_verified,omitempty"`
	// Images counts the files and devices the run read as disk images
	// (cut in fixed blocks, package repo/backup; an unchanged file is not
	// read); Devices the block devices stored as files (backup
	// --read-devices).
	Images  uint64 `json:"images,omitempty"`
	Devices uint64 `json:"devices,omitempty"`
}

// Set returns the key of the backup set the point belongs to: its
// SetName, or, for a point without one (every point made before sets
// existed), its sorted source paths each after a NUL, which no name that
// CheckSetName accepts holds. Readers do not check the name of a point
// they read (a later azfs may allow more): its set is what it names.
// Retention applies per set, never across sets (package repo/policy).
func (p *Point) Set() string {
	if p.SetName != "" {
		return p.SetName
	}
	paths := slices.Clone(p.Paths)
	slices.Sort(paths)
	return "\x00" + strings.Join(paths, "\x00")
}

// ErrSetName reports a backup set name that is not valid.
var ErrSetName = errkind.New(errkind.Invalid, "invalid backup set name")

// CheckSetName accepts a backup set name of 1 to 64 letters, digits, '.',
// '_' and '-' that starts with a letter or digit.
func CheckSetName(name string) error {
	return checkLabel(ErrSetName, name, "._-")
}

// checkLabel accepts 1 to 64 letters, digits and bytes of punct that start
// with a letter or digit; it wraps bad in its error otherwise.
func checkLabel(bad error, label, punct string) error {
	use := "letters, digits, " + quotedBytes(punct)
	if label == "" || len(label) > 64 {
		return fmt.Errorf("%w %q: use 1 to 64 %s", bad, label, use)
	}
	for i, c := range []byte(label) {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || strings.IndexByte(punct, c) < 0) {
			return fmt.Errorf("%w %q: use %s, starting with a letter or digit", bad, label, use)
		}
	}
	return nil
}

// quotedBytes lists the bytes of s each in single quotes: "'.', '_' and '-'".
func quotedBytes(s string) string {
	q := make([]string, len(s))
	for i := range len(s) {
		q[i] = "'" + s[i:i+1] + "'"
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// RootName is the name of the single node in a point's root part.
const RootName = "root"

const pointVersion = 1

// SavePoint commits a point. Call it only after every blob it references is
// durable (Writer.Flush returned nil): a point is visible once it is saved.
func (v *Area) SavePoint(ctx context.Context, p *Point) error {
	p.Version = pointVersion
	plain, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("save point: %w", err)
	}
	id, err := v.SaveObject(ctx, PointsPrefix, keys.KindPoint, plain)
	if err != nil {
		return err
	}
	p.ID = id
	return nil
}

// DecodePoint parses a point's plaintext.
func DecodePoint(plain []byte) (*Point, error) {
	var p Point
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, fmt.Errorf("%w: point: %w", ErrDamaged, err)
	}
	if p.Version != pointVersion || p.Root.IsZero() || p.Time.IsZero() {
		return nil, fmt.Errorf("%w: point: missing fields or unknown version %d", ErrDamaged, p.Version)
	}
	return &p, nil
}

// ObjectCache keeps small immutable objects of a machine's area (sealed
// points, retention tombstones) between processes, under their object
// names (package cache/objcache). What it returns is authenticated before
// use like the storage's copy; an entry that fails is removed and read
// from the storage instead.
type ObjectCache interface {
	// Get returns the object stored under name; the caller owns the slice.
	Get(name string) ([]byte, bool)
	// Put stores a copy of b under name.
	Put(name string, b []byte)
	// Remove drops the object stored under name.
	Remove(name string)
}

// Points returns every recovery point, oldest first. Points that fail to
// authenticate or decode are left out and reported in an error wrapping
// ErrDamaged, returned together with the good points; any other error
// returns no points.
func (v *Area) Points(ctx context.Context) ([]*Point, error) {
	return v.PointsFrom(ctx, nil)
}

// PointsFrom is Points reading the sealed points from c when it has them
// (and keeping there those it loads), and from the storage otherwise.
// Points are immutable, so the storage is only listed; with a warm cache a
// listing of 10,000 points costs one List and 10,000 authentications.
func (v *Area) PointsFrom(ctx context.Context, c ObjectCache) ([]*Point, error) {
	names, err := v.list(ctx, PointsPrefix)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var damaged []error
	points := make([]*Point, 0, len(names))
	err = par.Each(ctx, names, ioParallelism, func(ctx context.Context, name string) error {
		p, err := v.loadPoint(ctx, name, c)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, keys.ErrOtherKey):
			// Sealed under a key this machine lacks (another
			// certificate's session): not ours to show.
		case errors.Is(err, storage.ErrNotFound):
			// Purged by a prune since the listing.
		case errors.Is(err, ErrDamaged):
			damaged = append(damaged, err)
		case err != nil:
			return err
		default:
			points = append(points, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(points, func(a, b *Point) int {
		return cmp.Or(a.Time.Compare(b.Time), bytes.Compare(a.ID[:], b.ID[:])) // hex order
	})
	return points, errors.Join(damaged...)
}

// LoadPoint reads point id.
func (v *Area) LoadPoint(ctx context.Context, id keys.ID) (*Point, error) {
	return v.loadPoint(ctx, PointsPrefix+id.String(), nil)
}

func (v *Area) loadPoint(ctx context.Context, name string, c ObjectCache) (*Point, error) {
	id, err := parseObjectName(name)
	if err != nil {
		return nil, fmt.Errorf("point %s: %w: bad name", name, ErrDamaged)
	}
	plain, err := v.loadCached(ctx, c, name, name, keys.KindPoint, id)
	if err != nil {
		return nil, fmt.Errorf("point %s: %w", id.Short(), err)
	}
	p, err := DecodePoint(plain)
	if err != nil {
		return nil, fmt.Errorf("point %s: %w", id.Short(), err)
	}
	p.ID = id
	return p, nil
}

// loadCached reads the whole sealed object name of kind and ID id, from c
// (under key) when it holds it and opens there, else from the storage
// (keeping it in c), and returns its plaintext. Objects of the index kinds
// (index files, trailers, tombstones) open under the index key, the others
// under the content keys. c may be nil.
func (v *Area) loadCached(ctx context.Context, c ObjectCache, key, name string, kind keys.Kind, id keys.ID) ([]byte, error) {
	if c == nil {
		return v.loadObject(ctx, name, kind, id)
	}
	if sealed, ok := c.Get(key); ok {
		plain, err := v.openObject(kind, id, sealed)
		if err == nil || errors.Is(err, keys.ErrOtherKey) || errors.Is(err, ErrWriteOnly) {
			return plain, err
		}
		c.Remove(key) // damaged: the storage's copy instead
	}
	sealed, err := v.st.Load(ctx, name, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("load %s %s: %w", kind, id.Short(), err)
	}
	plain, err := v.openObject(kind, id, sealed)
	if err != nil {
		return nil, err
	}
	c.Put(key, sealed) // openObject left sealed as it was
	return plain, nil
}

// ErrUnknownPoint reports a point selector that matches nothing.
var ErrUnknownPoint = errkind.New(errkind.NotFound, "no such recovery point")

// PointTimeLayout is how azfs prints a point's time: in the local zone,
// with its UTC offset, so that the printed time is one instant wherever it
// is read, and SelectPoint takes it back.
const PointTimeLayout = "2006-01-02 15:04:05 -0700"

// PointNameLayout names a point's directory in a mount of every point: its
// time in UTC (a name holds no colon). SelectPoint takes it too.
const PointNameLayout = "2006-01-02T15-04-05Z"

// timeSelectors are the times SelectPoint takes, each with the span it
// names: a time to the second names that second, one to the minute that
// minute. A layout without a zone is read in SelectPoint's loc.
var timeSelectors = []struct {
	layout string
	span   time.Duration
	utc    bool // the layout's literal Z says UTC
}{
	{PointTimeLayout, time.Second, false},
	{"2006-01-02 15:04 -0700", time.Minute, false},
	{time.RFC3339, time.Second, false},
	{"2006-01-02T15:04Z07:00", time.Minute, false},
	{PointNameLayout, time.Second, true},
	{"2006-01-02 15:04:05", time.Second, false},
	{"2006-01-02 15:04", time.Minute, false},
	{"2006-01-02T15:04:05", time.Second, false},
	{"2006-01-02T15:04", time.Minute, false},
}

// SelectPoint picks a point from points (oldest first) by a selector:
// "latest"; a date "2006-01-02" (the last point of that day); a time (the
// last point at or before it, within that day) as azfs prints it
// ([PointTimeLayout], "2006-01-02 15:04:05 +0100"), to the minute
// ("2006-01-02 15:04 +0100"), in RFC 3339, as a mount names it
// ([PointNameLayout]), or without a zone ("2006-01-02 15:04[:05]", a T for
// the space too); or a prefix of the point's ID. Dates and times without a
// zone are in loc. When nothing matches, the error names the nearest
// points.
func SelectPoint(points []*Point, sel string, loc *time.Location) (*Point, error) {
	if len(points) == 0 {
		return nil, fmt.Errorf("%w: the vault has no recovery points yet", ErrUnknownPoint)
	}
	if sel == "latest" {
		return points[len(points)-1], nil
	}
	if day, err := time.ParseInLocation("2006-01-02", sel, loc); err == nil {
		return lastBefore(points, sel, day, day.AddDate(0, 0, 1))
	}
	for _, ts := range timeSelectors {
		in := loc
		if ts.utc {
			in = time.UTC
		}
		if t, err := time.ParseInLocation(ts.layout, sel, in); err == nil {
			y, m, d := t.Date()
			day := time.Date(y, m, d, 0, 0, 0, 0, t.Location())
			return lastBefore(points, sel, day, t.Add(ts.span))
		}
	}
	var match []*Point
	sel = strings.ToLower(sel)
	for _, p := range points {
		if strings.HasPrefix(p.ID.String(), sel) {
			match = append(match, p)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		near := slices.Clone(points)
		slices.SortStableFunc(near, func(a, b *Point) int {
			return commonPrefix(b.ID.String(), sel) - commonPrefix(a.ID.String(), sel)
		})
		return nil, fmt.Errorf("%w: %q; nearest: %s", ErrUnknownPoint, sel, describe(near[:min(3, len(near))]))
	default:
		return nil, fmt.Errorf("%w: %q is ambiguous: %s", ErrUnknownPoint, sel, describe(match[:min(5, len(match))]))
	}
}

// lastBefore returns the last point in [from, end), or an error naming the
// points nearest to that window.
func lastBefore(points []*Point, sel string, from, end time.Time) (*Point, error) {
	for i := len(points) - 1; i >= 0; i-- {
		t := points[i].Time
		if !t.Before(from) && t.Before(end) {
			return points[i], nil
		}
	}
	near := slices.Clone(points)
	dist := func(p *Point) time.Duration {
		if p.Time.Before(from) {
			return from.Sub(p.Time)
		}
		return p.Time.Sub(end)
	}
	slices.SortStableFunc(near, func(a, b *Point) int { return cmp.Compare(dist(a), dist(b)) })
	return nil, fmt.Errorf("%w at %s; nearest: %s", ErrUnknownPoint, sel, describe(near[:min(2, len(near))]))
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func describe(points []*Point) string {
	parts := make([]string, len(points))
	for i, p := range points {
		parts[i] = fmt.Sprintf("%s (%s, %s)", p.ID.Short(), p.Machine, p.Time.Local().Format(PointTimeLayout))
	}
	return strings.Join(parts, ", ")
}
