package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/restore"
)

// clearLine returns a terminal's cursor to the start of the line and erases
// the line.
const clearLine = "\r\033[K"

// Status is what a command prints on stderr while it works: messages and a
// progress line. On a terminal the progress line is redrawn in place below
// the messages. Anywhere else (a file, a pipe, a journal) no control
// character is written: progress, when asked for at all, is a plain line
// now and then, as restic prints nothing but its summary unless asked.
type Status struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	fd       int  // the terminal's file descriptor (stderr's, never 0)
	drawn    bool // a progress line is on the terminal
}

// NewStatus returns the status output to f, redrawn in place when f is a
// terminal.
func NewStatus(f *os.File) *Status {
	fd := int(f.Fd())
	return &Status{w: f, terminal: term.IsTerminal(fd), fd: fd}
}

// Terminal reports whether the status goes to a terminal.
func (s *Status) Terminal() bool { return s.terminal }

// Printf prints a message on its own line, above the progress line on a
// terminal.
func (s *Status) Printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eraseLocked()
	fmt.Fprintf(s.w, format, args...)
}

// eraseLocked erases the progress line if one is drawn; s.mu is held.
func (s *Status) eraseLocked() {
	if s.drawn {
		fmt.Fprint(s.w, clearLine)
		s.drawn = false
	}
}

// ShowProgress prints the progress p reports every interval until stop is
// closed: on a terminal redrawing one line, then clearing it; elsewhere
// one plain line each time.
func (s *Status) ShowProgress(p *backup.Progress, interval time.Duration, stop <-chan struct{}) {
	s.show(func(elapsed time.Duration) string { return progressLine(p, p.Reading(), elapsed, s.width()) }, interval, stop)
}

// ShowRestoreProgress is ShowProgress for a restore.
func (s *Status) ShowRestoreProgress(p *restore.Progress, interval time.Duration, stop <-chan struct{}) {
	s.show(func(elapsed time.Duration) string { return restoreLine(p, elapsed) }, interval, stop)
}

// width returns the terminal's width, or 0 when the status does not go to
// a terminal or its width is unknown.
func (s *Status) width() int {
	if !s.terminal || s.fd <= 0 {
		return 0
	}
	w, _, err := term.GetSize(s.fd)
	if err != nil {
		return 0
	}
	return w
}

// show prints line(time since start) every interval until stop is closed.
func (s *Status) show(line func(elapsed time.Duration) string, interval time.Duration, stop <-chan struct{}) {
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			s.mu.Lock()
			s.eraseLocked()
			s.mu.Unlock()
			return
		case <-t.C:
			line := line(time.Since(start))
			s.mu.Lock()
			if s.terminal {
				fmt.Fprint(s.w, clearLine+line)
				s.drawn = true
			} else {
				fmt.Fprintln(s.w, line)
			}
			s.mu.Unlock()
		}
	}
}

// progressLine is a backup's progress line: files and bytes done (inside
// files too), rate, the share of the total and an ETA once the scan has it,
// bytes stored, errors, and the files being read: the largest with its own
// share, and how many more. With width > 0 (a terminal's) the file's name
// is shortened from the left to fit.
func progressLine(p *backup.Progress, reading []backup.FileRead, elapsed time.Duration, width int) string {
	line := countLine(elapsed, p.Files.Load(), p.BytesDone.Load(), p.TotalBytes.Load(), p.ScanDone.Load())
	line += fmt.Sprintf(", %s stored", FormatBytes(p.BytesStored()))
	if e := p.Errors.Load(); e > 0 {
		line += ", " + Count(e, "error")
	}
	if len(reading) == 0 {
		return line
	}
	f := reading[0]
	tail := ""
	if f.Size > 0 {
		tail = fmt.Sprintf(" %.0f%% of %s", min(100, float64(f.Read)*100/float64(f.Size)), FormatBytes(f.Size))
	}
	if len(reading) > 1 {
		tail += fmt.Sprintf(" and %d more", len(reading)-1)
	}
	name := fmt.Sprintf("%q", f.Path)
	if room := width - 1 - len(line) - len(", ") - len(tail); width > 0 && len(name) > room {
		name = shortenLeft(name, room)
	}
	return line + ", " + name + tail
}

// shortenLeft cuts a quoted name to at most n bytes by dropping its start
// (the end of a path says most), marking the cut with "...".
func shortenLeft(quoted string, n int) string {
	const cut = `"...`
	if n < len(cut)+2 {
		return ""
	}
	rest := quoted[len(quoted)-(n-len(cut)):]
	// Do not start inside a UTF-8 sequence.
	for len(rest) > 0 && !utf8.RuneStart(rest[0]) {
		rest = rest[1:]
	}
	return cut + rest
}

// restoreLine is a restore's progress line: files and bytes done, rate, the
// share of the total and an ETA once the scan has it, bytes fetched from the
// vault, errors, and the file being written.
func restoreLine(p *restore.Progress, elapsed time.Duration) string {
	line := countLine(elapsed, p.Files.Load(), p.BytesDone.Load(), p.TotalBytes.Load(), p.ScanDone.Load())
	line += fmt.Sprintf(", %s fetched", FormatBytes(p.BytesFetched.Load()))
	if e := p.Errors.Load(); e > 0 {
		line += ", " + Count(e, "error")
	}
	if cur := p.Current.Load(); cur != nil {
		line += fmt.Sprintf(", %q", *cur)
	}
	return line
}

// countLine starts a progress line: elapsed time, files, bytes done and
// rate, and, once the total is known, its share and an ETA.
func countLine(elapsed time.Duration, files, done, total uint64, totalKnown bool) string {
	rate := float64(done) / max(elapsed.Seconds(), 0.001)
	line := fmt.Sprintf("[%s] %s, %s, %s/s", elapsed.Truncate(time.Second), Count(files, "file"), FormatBytes(done), FormatBytes(uint64(rate)))
	if totalKnown && total > 0 {
		pct := min(100, float64(done)*100/float64(total))
		line += fmt.Sprintf(" of %s (%.0f%%)", FormatBytes(total), pct)
		if rate > 0 && done < total {
			eta := time.Duration(float64(total-done) / rate * float64(time.Second))
			line += fmt.Sprintf(", ETA %s", eta.Truncate(time.Second))
		}
	}
	return line
}
