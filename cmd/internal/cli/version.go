package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// BuildInfo is what a binary knows of its own build: the module version
// and the revision of the source it was built from ('azfs version').
type BuildInfo struct {
	// Version is the module version: a release tag, a pseudo-version, or
	// "(devel)" for a build of a checkout.
	Version string `json:"version"`
	// Revision is the VCS revision of the checkout, Time its commit time
	// (RFC 3339), Modified whether the checkout had uncommitted changes;
	// empty when the build did not record them (go build -buildvcs=false,
	// or outside a checkout).
	Revision string `json:"revision"`
	Time     string `json:"revision_time"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`       // the Go release that built it
	Platform string `json:"platform"` // GOOS/GOARCH
}

// ReadBuildInfo returns this binary's build information.
func ReadBuildInfo() BuildInfo {
	bi, _ := debug.ReadBuildInfo() // nil when nothing was recorded
	return buildInfoOf(bi)
}

// buildInfoOf extracts a BuildInfo from what the Go linker recorded (nil:
// nothing recorded).
func buildInfoOf(bi *debug.BuildInfo) BuildInfo {
	b := BuildInfo{Version: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return b
	}
	if bi.Main.Version != "" {
		b.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		b.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String renders b on one line: "v1.2.0 (revision 0123abcd…, 2026-12-07T04:00:00Z,
// modified; go1.26.8 linux/amd64)".
func (b BuildInfo) String() string {
	var parts []string
	if b.Revision != "" {
		rev := "revision " + b.Revision
		if b.Time != "" {
			rev += ", " + b.Time
		}
		if b.Modified {
			rev += ", modified"
		}
		parts = append(parts, rev)
	} else {
		parts = append(parts, "no revision recorded")
	}
	return fmt.Sprintf("%s (%s; %s %s)", b.Version, strings.Join(parts, ""), b.Go, b.Platform)
}
