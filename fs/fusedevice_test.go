package fs

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/trace"
	"strings"
	"testing"
	"time"

	xtrace "golang.org/x/exp/trace"
	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/testfiles"
)

// TestMountedReadersWaitInPoller: the goroutines reading requests from
// /dev/fuse wait in the runtime's poller ("IO wait"), not in a blocking
// read(2) that holds an OS thread ("syscall"), with the device opened by
// mount(2) (as root) and by fusermount3 alike; and the mount still unmounts.
// Upstream go-fuse blocks in read(2), and the runtime's monitor then retakes
// the readers' Ps and polls every 20µs while requests flow
// (third_party/go-fuse/AZFS-PATCH.md).
func TestMountedReadersWaitInPoller(t *testing.T) {
	testfiles.RequireFUSE(t)
	for _, direct := range []bool{true, false} {
		name := "fusermount3"
		if direct {
			name = "mount(2)"
		}
		t.Run(name, func(t *testing.T) {
			if direct && os.Geteuid() != 0 {
				t.Skip("mount(2) needs root")
			}
			if _, err := exec.LookPath("fusermount3"); !direct && err != nil {
				if os.Getenv("CI") == "true" {
					t.Fatalf("no fusermount3 on CI: %v", err)
				}
				t.Skip("no fusermount3")
			}
			f := newFixture(t)
			root, err := NewPointRoot(f.src, f.point, Options{})
			if err != nil {
				t.Fatal(err)
			}
			opts := mountOptions(Options{})
			opts.DirectMount = direct
			dir := t.TempDir()
			server, err := mount(dir, root, opts, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			mounted := true
			t.Cleanup(func() {
				if mounted {
					server.Unmount()
				}
			})
			for _, name := range []string{"big", "sparse", "hard1"} {
				if _, err := os.ReadFile(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			var waiting, blocked int
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				waiting, blocked = requestReaders()
				if waiting > 0 || blocked > 0 || time.Now().After(deadline) {
					break
				}
			}
			if blocked > 0 || waiting == 0 {
				t.Errorf("request readers: %d in the poller, %d in a blocking system call; want some and none", waiting, blocked)
			}
			if err := server.Unmount(); err != nil {
				t.Fatalf("unmount: %v", err)
			}
			mounted = false
			if waiting, blocked := requestReaders(); waiting+blocked > 0 {
				t.Errorf("after unmount: %d request readers left", waiting+blocked)
			}
		})
	}
}

// requestReaders counts the goroutines of this process that wait for a
// FUSE request: parked in the poller, and blocked in a system call.
func requestReaders() (waiting, blocked int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if !bytes.Contains(g, []byte("fuse.(*fuseFD).readRequest(")) {
			continue
		}
		header, _, _ := strings.Cut(string(g), "\n")
		switch {
		case strings.Contains(header, "[IO wait"):
			waiting++
		case strings.Contains(header, "[syscall"):
			blocked++
		}
	}
	return waiting, blocked
}

// TestMountedRepliesEnterNoSyscall: serving READs of chunks already at
// hand, the goroutines of go-fuse read requests and write replies without
// entering a system call as the runtime counts them (the execution trace
// shows no goroutine of the FUSE device's in the syscall state). Each such
// entry wakes the runtime's monitor when the process was idle, as a server
// is between requests, and the monitor then polls every 20µs for a while
// (third_party/go-fuse/AZFS-PATCH.md).
func TestMountedRepliesEnterNoSyscall(t *testing.T) {
	f := newFixture(t)
	root, err := NewPointRoot(f.src, f.point, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := mountTest(t, root, Options{})
	names := []string{"big", "sparse", "hard1", "xattrs", "old"}
	// Load every chunk into the cache, then drop the kernel's pages so
	// that the reads below reach the mount again.
	for _, name := range names {
		readAndDropPages(t, filepath.Join(dir, name))
	}

	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		readAndDropPages(t, filepath.Join(dir, name))
	}
	trace.Stop()

	r, err := xtrace.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	syscalls := map[string]int{}
	for {
		ev, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind() != xtrace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != xtrace.ResourceGoroutine {
			continue
		}
		if _, to := st.Goroutine(); to != xtrace.GoSyscall {
			continue
		}
		for frame := range st.Stack.Frames() {
			if strings.Contains(frame.Func, "go-fuse/v2/fuse.(*fuseFD)") {
				syscalls[frame.Func]++
				break
			}
		}
	}
	if len(syscalls) > 0 {
		t.Errorf("system calls entered by the FUSE device's goroutines, by function: %v", syscalls)
	}
}

// readAndDropPages reads the file at path whole, then drops its pages from
// the kernel's cache.
func readAndDropPages(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(io.Discard, f); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}
