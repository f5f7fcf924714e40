package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage"
)

// quarantinePrefix holds the objects azfs repair moved out of the listings
// azfs reads (points/, index/, tombstones/) because they do not
// authenticate: what anyone who may create objects in the area (a backup
// SAS that may only create) can leave there. No listing of azfs covers it;
// the owner reads it with azfs repair.
const quarantinePrefix = "quarantine/"

// maxQuarantineCopy bounds the objects Quarantine copies: points and
// tombstones are kilobytes and index files at most tens of megabytes, so
// a larger object under their prefixes is none of them.
const maxQuarantineCopy = 256 << 20

// Junk is an object azfs reads that is not what azfs wrote there.
type Junk struct {
	Name string // its name in the area
	Size int64
	Why  error // wraps ErrDamaged
}

// FindJunk calls fn for every object under the prefixes azfs lists and
// reads (points/, index/, tombstones/) whose name azfs never writes there
// or whose content does not authenticate or decode under the area's keys.
// An object sealed under a key this vault lacks (keys.ErrOtherKey: another
// certificate's session) or that a write-only key set cannot open is not
// junk: only its key's holder can tell. Storage errors stop the scan.
func (v *Area) FindJunk(ctx context.Context, fn func(Junk) error) error {
	type prefix struct {
		name string
		kind keys.Kind
	}
	for _, p := range []prefix{{PointsPrefix, keys.KindPoint}, {IndexPrefix, keys.KindIndex}, {tombstonesPrefix, keys.KindTombstone}} {
		var infos []storage.Info
		err := v.st.List(ctx, p.name, func(fi storage.Info) error {
			infos = append(infos, fi)
			return nil
		})
		if err != nil {
			return fmt.Errorf("list %s: %w", p.name, err)
		}
		for _, fi := range infos {
			why, err := v.junk(ctx, fi, p.name, p.kind)
			if err != nil {
				return err
			}
			if why != nil {
				if err := fn(Junk{Name: fi.Name, Size: fi.Size, Why: why}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// junk returns why the object fi under prefix, of kind, is junk, or nil
// when it is not (or is gone).
func (v *Area) junk(ctx context.Context, fi storage.Info, prefix string, kind keys.Kind) (why, err error) {
	id, err := parseObjectName(fi.Name)
	if err != nil || fi.Name != prefix+id.String() {
		return fmt.Errorf("%w: a name azfs never writes under %s", ErrDamaged, prefix), nil
	}
	if fi.Size > maxQuarantineCopy {
		return fmt.Errorf("%w: %d bytes is larger than any %s", ErrDamaged, fi.Size, kind), nil
	}
	switch kind {
	case keys.KindPoint:
		_, err = v.LoadPoint(ctx, id)
	case keys.KindIndex:
		_, err = v.ReadIndexFile(ctx, id)
	default:
		_, err = v.loadObject(ctx, fi.Name, kind, id)
	}
	switch {
	case errors.Is(err, ErrDamaged):
		return err, nil
	case err == nil, errors.Is(err, keys.ErrOtherKey), errors.Is(err, ErrWriteOnly), errors.Is(err, storage.ErrNotFound):
		return nil, nil
	}
	return nil, err
}

// Quarantine moves object name of the area under quarantine/ (a copy,
// then the delete: storages have no rename) and returns its new name:
// quarantine/<name>, or quarantine/<name>-<n> when another object holds
// that name already. An object larger than anything azfs writes under the
// prefixes FindJunk scans is deleted without a copy (the new name is then
// empty).
func (v *Area) Quarantine(ctx context.Context, name string) (string, error) {
	fi, err := v.st.Stat(ctx, name)
	if err != nil {
		return "", fmt.Errorf("quarantine %s: %w", name, err)
	}
	to := ""
	if fi.Size <= maxQuarantineCopy {
		b, err := v.st.Load(ctx, name, 0, -1)
		if err != nil {
			return "", fmt.Errorf("quarantine %s: %w", name, err)
		}
		if to, err = v.saveQuarantined(ctx, name, b); err != nil {
			return "", err
		}
	}
	if err := v.deleteObject(ctx, name); err != nil {
		return to, fmt.Errorf("quarantine %s: %w", name, err)
	}
	return to, nil
}

// saveQuarantined stores b, the content of name, under quarantine/.
func (v *Area) saveQuarantined(ctx context.Context, name string, b []byte) (string, error) {
	for n := 1; n <= 100; n++ {
		to := quarantinePrefix + name
		if n > 1 {
			to += "-" + strconv.Itoa(n)
		}
		err := v.st.Save(ctx, to, b)
		if err == nil {
			return to, nil
		}
		if !errors.Is(err, storage.ErrExists) {
			return "", fmt.Errorf("quarantine %s: %w", name, err)
		}
		if have, err := v.st.Load(ctx, to, 0, -1); err == nil && bytes.Equal(have, b) {
			return to, nil // quarantined before: the same bytes
		}
	}
	return "", fmt.Errorf("quarantine %s: 100 other objects hold its quarantine names", name)
}

// Quarantined lists the objects under quarantine/, with their names in
// the area.
func (v *Area) Quarantined(ctx context.Context) ([]storage.Info, error) {
	var out []storage.Info
	err := v.st.List(ctx, quarantinePrefix, func(fi storage.Info) error {
		out = append(out, fi)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", quarantinePrefix, err)
	}
	return out, nil
}
