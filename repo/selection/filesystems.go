package selection

import (
	"slices"
	"strings"
)

// PseudoFileSystems are the file system types a backup never enters unless
// told to (FileSystems.Include): the kernel's views of itself, which hold no
// data to keep and much that cannot be read (proc, sysfs and the like),
// and azmount's own mounts of recovery points (fuse.azfs), which would
// store a vault's points into it again.
var PseudoFileSystems = []string{
	"proc", "sysfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs",
	"securityfs", "pstore", "bpf", "fusectl", "configfs", "mqueue",
	"hugetlbfs", "autofs", "binfmt_misc", "fuse.azfs",
}

// FileSystems decides which mounted file systems a walk enters below the
// paths it was given. A mount point it does not enter is kept, as an empty
// directory (as restic and borg do with --one-file-system).
type FileSystems struct {
	// OneFileSystem enters no other file system than those of the named
	// paths (restic's and borg's -x, --one-file-system).
	OneFileSystem bool
	// Include lists pseudo file system types entered anyway.
	Include []string
}

// Enters reports whether a walk enters a file system of type fstype
// ("" when unknown) mounted below a named path.
func (f *FileSystems) Enters(fstype string) bool {
	if f.OneFileSystem {
		return false
	}
	return !slices.Contains(PseudoFileSystems, fstype) || slices.Contains(f.Include, fstype)
}

// PseudoList is PseudoFileSystems for a help text.
func PseudoList() string { return strings.Join(PseudoFileSystems, ", ") }
