package loopdev_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/azfs/azfs/internal/loopdev"
	"github.com/azfs/azfs/internal/loopdev/loopdevtest"
)

func TestAttachDetach(t *testing.T) {
	loopdevtest.RequireRoot(t)
	img := filepath.Join(t.TempDir(), "disk.img")
	data := bytes.Repeat([]byte("azfs"), 256<<10)
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dev, err := loopdev.Attach(context.Background(), img, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dev)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("reading %s: %d bytes (%v), want the file's %d", dev, len(got), err, len(data))
	}
	if f, err := os.OpenFile(dev, os.O_WRONLY, 0); err == nil {
		if _, err := f.Write([]byte("x")); err == nil {
			t.Errorf("%s attached read-only takes writes", dev)
		}
		f.Close()
	}
	if err := loopdev.Detach(dev); err != nil {
		t.Fatal(err)
	}
	if _, err := loopdev.Attach(context.Background(), filepath.Join(t.TempDir(), "missing"), false); err == nil {
		t.Errorf("attaching a missing file succeeded")
	}
}
