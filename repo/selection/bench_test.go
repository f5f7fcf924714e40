package selection

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// benchPatterns are 20 patterns as a server's exclude file holds them,
// none of which matches the benchmark's tree: every entry is checked
// against all of them.
var benchPatterns = []string{
	"*.tmp", "*.swp", "*~", "*.o", "*.pyc", "node_modules", ".cache", "__pycache__",
	"/var/cache", "/var/tmp", "/home/*/Downloads", "/home/*/.local/share/Trash",
	"**/target/debug", "*.[oa]", "core.[0-9]*", "/srv/**/logs/*.gz", "Thumbs.db",
	".DS_Store", "/root/.ccache", "lost+found",
}

// BenchmarkWalk walks a tree of 20,000 files, lstat-ing every entry as a
// backup does, with no patterns and with benchPatterns, so the cost of
// matching shows as a ratio of the two (compare ns/op).
func BenchmarkWalk(b *testing.B) {
	root := b.TempDir()
	for d := range 100 {
		dir := filepath.Join(root, fmt.Sprintf("dir%03d", d), "sub")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 200 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%03d.txt", f)), nil, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	var with Selection
	for _, p := range benchPatterns {
		if err := with.Exclude.Add(p, false); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name string
		sel  *Selection
	}{{"patterns=0", &Selection{}}, {"patterns=20", &with}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				n := 0
				err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
					if err != nil {
						return err
					}
					if _, err := os.Lstat(path); err != nil {
						return err
					}
					if bc.sel.ExcludedPath(path) {
						return fs.SkipDir
					}
					n++
					return nil
				})
				if err != nil || n != 1+100*202 {
					b.Fatalf("walked %d entries: %v", n, err)
				}
			}
		})
	}
}

// BenchmarkExcludedPath is the cost benchPatterns add to each entry a
// backup meets: one path of five names checked against all 20.
func BenchmarkExcludedPath(b *testing.B) {
	var s Selection
	for _, p := range benchPatterns {
		if err := s.Exclude.Add(p, false); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if s.ExcludedPath("/srv/data/project/src/file042.txt") {
			b.Fatal("excluded")
		}
	}
}
