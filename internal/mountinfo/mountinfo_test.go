package mountinfo

import (
	"reflect"
	"testing"
)

func TestParseTop(t *testing.T) {
	text := `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/root rw
98 22 0:50 / /mnt/a\040b rw,nosuid,nodev,relatime shared:50 - fuse.azfs azfs ro,user_id=0,group_id=0
99 22 0:51 / /mnt/plain rw,relatime - fuse.sshfs host:/ rw
100 99 0:52 / /mnt/plain rw,relatime - fuse.azfs azfs ro
not a mountinfo line
`
	mounts := Parse(text)
	want := []Mount{{"/", "ext4"}, {"/mnt/a b", "fuse.azfs"}, {"/mnt/plain", "fuse.sshfs"}, {"/mnt/plain", "fuse.azfs"}}
	if !reflect.DeepEqual(mounts, want) {
		t.Fatalf("Parse = %v, want %v", mounts, want)
	}
	for point, want := range map[string]string{"/mnt/a b": "fuse.azfs", "/mnt/plain": "fuse.azfs", "/": "ext4", "/mnt/none": ""} {
		m, ok := Top(mounts, point)
		if m.Type != want || ok != (want != "") {
			t.Errorf("Top(%q) = %v, %v; want type %q", point, m, ok, want)
		}
	}
	if _, err := Self(); err != nil {
		t.Errorf("Self: %v", err)
	}
}
