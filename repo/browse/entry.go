package browse

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/repo/tree"
)

// Entry is one entry of a point as azfs ls, find and diff print it with
// --json. The shape is stable: fields are only ever added. Paths and names
// are bytes in the vault; JSON carries them as strings, so a name that is
// not UTF-8 shows U+FFFD where its bad bytes are (the text output quotes
// them exactly).
type Entry struct {
	// Path is the entry's path in the point, from its top level, starting
	// with "/" ("/home/alice/report.odt"); "/" is the top level.
	Path string `json:"path"`
	// Type is file, dir, symlink, chardev, blockdev, fifo or socket.
	Type string `json:"type"`
	// Mode is the permission bits with setuid, setgid and sticky (07777).
	Mode  uint32    `json:"mode"`
	UID   uint32    `json:"uid"`
	GID   uint32    `json:"gid"`
	User  string    `json:"user,omitempty"`
	Group string    `json:"group,omitempty"`
	Size  uint64    `json:"size"`
	MTime time.Time `json:"mtime"`
	ATime time.Time `json:"atime"`
	CTime time.Time `json:"ctime"`
	Links uint32    `json:"links"`
	// Target is a symlink's target.
	Target string `json:"target,omitempty"`
	// Device is a device node's "major:minor".
	Device string `json:"device,omitempty"`
	// Xattrs names the entry's extended attributes.
	Xattrs []string `json:"xattrs,omitempty"`
	// Stored is how many bytes of a file's content are data: less than
	// Size for a sparse file.
	Stored uint64 `json:"stored_bytes"`
}

// EntryOf describes n found at path p, as stat(2) shows it in a mount: a
// symlink's size is its target's length, the link count at least 1 (2 for
// a directory).
func EntryOf(p string, n *tree.Node) Entry {
	e := Entry{
		Path: "/" + strings.TrimPrefix(p, "/"), Type: n.Type.String(), Mode: n.Mode, UID: n.UID, GID: n.GID,
		User: n.User, Group: n.Group, Size: n.Size, Links: n.Links, Target: n.Target,
		MTime: n.MTime.Time().UTC(), ATime: n.ATime.Time().UTC(), CTime: n.CTime.Time().UTC(),
		Stored: n.StoredBytes(),
	}
	e.Links = max(e.Links, 1)
	switch n.Type {
	case tree.Dir:
		e.Size = 0 // a directory's size is its file system's business
		e.Links = max(e.Links, 2)
	case tree.Symlink:
		e.Size = uint64(len(n.Target))
	}
	if n.Type == tree.CharDev || n.Type == tree.BlockDev {
		e.Device = fmt.Sprintf("%d:%d", unix.Major(n.Rdev), unix.Minor(n.Rdev))
	}
	for _, x := range n.Xattrs {
		e.Xattrs = append(e.Xattrs, x.Name)
	}
	return e
}

// typeLetters are the type letters of ls -l, by Entry.Type.
var typeLetters = map[string]byte{"file": '-', "dir": 'd', "symlink": 'l', "chardev": 'c', "blockdev": 'b', "fifo": 'p', "socket": 's'}

// ModeString returns the entry's type and permissions as ls -l shows them
// ("drwxr-xr-x", "-rwsr-x---", "lrwxrwxrwx").
func (e Entry) ModeString() string {
	mode := e.Mode
	b := []byte("?rwxrwxrwx")
	if c, ok := typeLetters[e.Type]; ok {
		b[0] = c
	}
	for i := range 9 {
		if mode&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(bit uint32, at int, set, unset byte) {
		if mode&bit != 0 {
			if b[at] == '-' {
				b[at] = unset
			} else {
				b[at] = set
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

// Long formats e as one line of ls -l: mode, links, owner, group, size
// (a device's major:minor), mtime (UTC, to the second), the path and a
// symlink's target, each through quote. Owners without a name show their
// number.
func (e Entry) Long(quote func(string) string) string {
	user, group := e.User, e.Group
	if user == "" {
		user = fmt.Sprint(e.UID)
	}
	if group == "" {
		group = fmt.Sprint(e.GID)
	}
	size := fmt.Sprint(e.Size)
	if e.Device != "" {
		size = e.Device
	}
	line := fmt.Sprintf("%s %3d %-8s %-8s %12s %s %s", e.ModeString(), e.Links, quote(user), quote(group), size,
		e.MTime.Format("2006-01-02 15:04:05"), quote(e.Path))
	if e.Type == "symlink" {
		line += " -> " + quote(e.Target)
	}
	return line
}
