// Package loopdev attaches files to Linux loop devices, and detaches them,
// with losetup(8) (util-linux): a file that holds a disk image becomes a
// block device. It needs root.
package loopdev

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Attach attaches the file at path to a free loop device, read-only if
// readOnly, and returns the device's path (/dev/loopN).
func Attach(ctx context.Context, path string, readOnly bool) (string, error) {
	args := []string{"--show", "--find"}
	if readOnly {
		args = append(args, "--read-only")
	}
	out, err := exec.CommandContext(ctx, "losetup", append(args, "--", path)...).Output()
	if err != nil {
		return "", fmt.Errorf("attach %q to a loop device: %w", path, commandError(err))
	}
	dev := strings.TrimSpace(string(out))
	if !strings.HasPrefix(dev, "/dev/loop") {
		return "", fmt.Errorf("attach %q to a loop device: losetup printed %q", path, dev)
	}
	return dev, nil
}

// Detach detaches the loop device dev, which Attach returned.
func Detach(dev string) error {
	if _, err := exec.Command("losetup", "--detach", dev).Output(); err != nil {
		return fmt.Errorf("detach loop device %s: %w", dev, commandError(err))
	}
	return nil
}

// commandError adds what the command printed on stderr to err.
func commandError(err error) error {
	if ee, ok := err.(*exec.ExitError); ok {
		if msg := bytes.TrimSpace(ee.Stderr); len(msg) > 0 {
			return fmt.Errorf("%w: %s", err, msg)
		}
	}
	return err
}
