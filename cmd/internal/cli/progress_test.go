package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/restore"
)

// TestStatusNotTerminal: away from a terminal, progress and messages are
// plain lines, with no carriage return or escape sequence.
func TestStatusNotTerminal(t *testing.T) {
	var buf bytes.Buffer
	s := &Status{w: &buf}
	p := &backup.Progress{}
	p.Files.Store(3)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { s.ShowProgress(p, time.Millisecond, stop); close(done) }()
	time.Sleep(20 * time.Millisecond)
	s.Printf("azfs: skipped %q: open: permission denied\n", "/src/a")
	close(stop)
	<-done
	out := buf.String()
	if strings.ContainsAny(out, "\r\033") {
		t.Errorf("output holds a carriage return or an escape: %q", out)
	}
	if !strings.Contains(out, "[0s] 3 files, 0 B") || !strings.Contains(out, "azfs: skipped \"/src/a\": open: permission denied\n") {
		t.Errorf("want progress lines and the message, got %q", out)
	}
}

// TestStatusTerminal: on a terminal the progress line is redrawn in place,
// erased before a message and at the end.
func TestStatusTerminal(t *testing.T) {
	var buf bytes.Buffer
	s := &Status{w: &buf, terminal: true}
	p := &backup.Progress{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { s.ShowProgress(p, time.Millisecond, stop); close(done) }()
	time.Sleep(20 * time.Millisecond)
	s.Printf("message\n")
	time.Sleep(20 * time.Millisecond)
	close(stop)
	<-done
	out := buf.String()
	if !strings.Contains(out, clearLine+"message\n") || !strings.HasSuffix(out, clearLine) || !strings.HasPrefix(out, clearLine+"[0s]") {
		t.Errorf("want the line redrawn, erased before the message and at the end, got %q", out)
	}
}

// TestRestoreLine: a restore's line has the share, an ETA, what was
// fetched and the quoted file being written.
func TestRestoreLine(t *testing.T) {
	p := &restore.Progress{}
	p.Files.Store(2)
	p.BytesDone.Store(50 << 20)
	p.TotalBytes.Store(100 << 20)
	p.ScanDone.Store(true)
	p.BytesFetched.Store(40 << 20)
	cur := "home/a\nb"
	p.Current.Store(&cur)
	got := restoreLine(p, 10*time.Second)
	want := `[10s] 2 files, 50.0 MiB, 5.0 MiB/s of 100.0 MiB (50%), ETA 10s, 40.0 MiB fetched, "home/a\nb"`
	if got != want {
		t.Errorf("restoreLine = %q, want %q", got, want)
	}
}

// TestProgressLineNamesTheFile: a backup's progress line counts bytes
// inside files, the bytes stored, and, once the scan has the total, gives
// an ETA; it names the largest file being read (quoted) with its own
// share, and how many more are (issue 14: it named the file read last
// started, whatever the parallel readers were at).
func TestProgressLineNamesTheFile(t *testing.T) {
	p := &backup.Progress{}
	p.Files.Store(1)
	p.BytesDone.Store(512 << 20)
	p.TotalBytes.Store(1 << 30)
	p.ScanDone.Store(true)
	reading := []backup.FileRead{{Path: "/srv/big\nfile.img", Size: 800 << 20, Read: 200 << 20}, {Path: "/srv/a", Size: 10}, {Path: "/srv/b", Size: 5}}
	line := progressLine(p, reading, 10*time.Second, 0)
	want := `[10s] 1 file, 512.0 MiB, 51.2 MiB/s of 1.0 GiB (50%), ETA 10s, 0 B stored, "/srv/big\nfile.img" 25% of 800.0 MiB and 2 more`
	if line != want {
		t.Errorf("progress line\n%q, want\n%q", line, want)
	}
	if line := progressLine(p, reading[2:], 10*time.Second, 0); !strings.HasSuffix(line, `stored, "/srv/b" 0% of 5 B`) {
		t.Errorf("one file being read: %q", line)
	}
	if line := progressLine(p, nil, 10*time.Second, 0); !strings.HasSuffix(line, ", 0 B stored") {
		t.Errorf("no file being read: %q", line)
	}
}

// TestProgressLineFitsTheTerminal: on a terminal a long name is shortened
// from the left so that the line fits (a wrapped line cannot be redrawn in
// place).
func TestProgressLineFitsTheTerminal(t *testing.T) {
	p := &backup.Progress{}
	long := "/srv/" + strings.Repeat("dir/", 40) + "äöü-file.img"
	reading := []backup.FileRead{{Path: long, Size: 100, Read: 50}, {Path: "/b"}}
	line := progressLine(p, reading, time.Second, 100)
	if len(line) > 99 || !strings.Contains(line, `"...`) || !strings.HasSuffix(line, `file.img" 50% of 100 B and 1 more`) || !utf8.ValidString(line) {
		t.Errorf("line of %d bytes for a terminal 100 wide: %q", len(line), line)
	}
}
