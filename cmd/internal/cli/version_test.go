package cli

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildInfoOf(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/azfs/azfs", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-07T04:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	b := buildInfoOf(bi)
	if b.Version != "v1.2.0" || b.Revision != "0123abcd" || b.Time != "2026-12-07T04:00:00Z" || !b.Modified || b.Go != "go1.26.8" {
		t.Fatalf("buildInfoOf = %+v", b)
	}
	if s := b.String(); !strings.HasPrefix(s, "v1.2.0 (revision 0123abcd, 2026-12-07T04:00:00Z, modified; go1.26.8 ") {
		t.Errorf("String() = %q", s)
	}
	none := buildInfoOf(nil)
	if none.Version != "(unknown)" || !strings.Contains(none.String(), "no revision recorded") {
		t.Errorf("without build info: %+v %q", none, none.String())
	}
}
