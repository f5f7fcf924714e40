package backup

import (
	"slices"

	"github.com/azfs/azfs/internal/mountinfo"
	"github.com/azfs/azfs/repo/selection"
)

// walkRules are what a run leaves out as it walks: azfs's own state, and
// what the user's selection (package selection) decides, asked about every
// entry the walk meets.
type walkRules struct {
	own exclusions
	sel *selection.Selection
	// mounts name the file system types of mount points met below a
	// named path (nil when /proc is not there: types are then unknown,
	// and only --one-file-system keeps the walk out of other mounts).
	mounts []mountinfo.Mount
}

func newWalkRules(own exclusions, sel *selection.Selection) *walkRules {
	if sel == nil {
		sel = &selection.Selection{}
	}
	mounts, _ := mountinfo.Self()
	return &walkRules{own: own, sel: sel, mounts: mounts}
}

// verdict is what the walk does with an entry.
type verdict uint8

const (
	keep      verdict = iota
	leaveOut          // absent from the point
	keepEmpty         // a mount point of a file system not entered: an empty directory
)

// decide says what the walk does with the entry at path in parent, on
// device dev with inode ino; size is a regular file's size, -1 for
// anything else.
func (r *walkRules) decide(parent *dir, path string, dev, ino uint64, isDir bool, size int64) verdict {
	if r.own.has(dev, ino) {
		return leaveOut
	}
	if r.sel.ExcludedPath(path) || size >= 0 && r.sel.ExcludedSize(size) {
		return leaveOut
	}
	if !parent.walked || dev == parent.dev {
		return keep // a named path, or on its parent's file system
	}
	if !isDir {
		// A file bind-mounted from another file system.
		if r.sel.FileSystems.OneFileSystem {
			return leaveOut
		}
		return keep
	}
	var fstype string
	if m, ok := mountinfo.Top(r.mounts, path); ok {
		fstype = m.Type
	}
	if !r.sel.FileSystems.Enters(fstype) {
		return keepEmpty
	}
	return keep
}

// tagged returns the names of directory d (at path) to walk: all of them,
// or only the tag files when one of the selection's tags marks it.
func (r *walkRules) tagged(d *dir, path string, names []string) []string {
	var tags []string
	for _, t := range r.sel.Tags {
		if _, found := slices.BinarySearch(names, t.Name); !found || slices.Contains(tags, t.Name) {
			continue
		}
		f, err := d.open(t.Name, path)
		if err != nil {
			continue // not a readable file: not a tag
		}
		if t.Marks(f) {
			tags = append(tags, t.Name)
		}
		f.Close()
	}
	if tags == nil {
		return names
	}
	slices.Sort(tags)
	return tags
}
