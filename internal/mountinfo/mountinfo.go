// Package mountinfo reads /proc/self/mountinfo: which file system is
// mounted where, as the kernel lists it for this process's mount namespace.
package mountinfo

import (
	"os"
	"slices"
	"strconv"
	"strings"
)

// Mount is one mount that mountinfo lists.
type Mount struct {
	Point string // where it is mounted, unescaped
	Type  string // the file system type, such as "ext4" or "fuse.azfs"
}

// Self returns the mounts of this process's mount namespace, in the order
// the kernel lists them (a mount after one at the same point is over it).
func Self() ([]Mount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return Parse(string(b)), nil
}

// Parse returns the mounts that text, in the format of
// /proc/<pid>/mountinfo, lists; it skips lines it cannot read.
func Parse(text string) []Mount {
	var mounts []Mount
	for _, line := range strings.Split(text, "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 6 || sep+1 >= len(f) {
			continue
		}
		mounts = append(mounts, Mount{Point: unescape(f[4]), Type: f[sep+1]})
	}
	return mounts
}

// Top returns the topmost of mounts at point (a clean absolute path), and
// false when none is there.
func Top(mounts []Mount, point string) (Mount, bool) {
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Point == point {
			return mounts[i], true
		}
	}
	return Mount{}, false
}

// unescape decodes the octal escapes of a mountinfo path (\040 for a
// space, \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
