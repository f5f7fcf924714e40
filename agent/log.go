package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// NewLogger returns the agent's logger: log/slog's text format, one line
// per record, to w. For the systemd journal (journal true) a line carries
// no time, which the journal adds, and starts with its syslog priority
// ("<3>" error, "<4>" warning, "<6>" info, "<7>" debug), which journald
// takes as the entry's priority and removes (SyslogLevelPrefix=, on by
// default), so that 'journalctl -p warning' finds the warnings and errors.
func NewLogger(w io.Writer, journal bool) *slog.Logger {
	if !journal {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	out := &journalOut{w: w}
	inner := slog.NewTextHandler(&out.buf, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	return slog.New(journalHandler{inner: inner, out: out})
}

// IsJournal reports whether f is the systemd journal's stream: systemd
// names the stream's device and inode in $JOURNAL_STREAM.
func IsJournal(f *os.File) bool {
	var dev, ino uint64
	if _, err := fmt.Sscanf(os.Getenv("JOURNAL_STREAM"), "%d:%d", &dev, &ino); err != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == dev && st.Ino == ino
}

// journalOut is where the handlers of one journal logger write: a record
// is formatted into buf behind its priority, then written to w whole.
type journalOut struct {
	mu  sync.Mutex
	buf bytes.Buffer
	w   io.Writer
}

// journalHandler prefixes the lines of a text handler writing to out.buf
// with their priority.
type journalHandler struct {
	inner slog.Handler
	out   *journalOut
}

func (h journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h journalHandler) Handle(ctx context.Context, r slog.Record) error {
	o := h.out
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Reset()
	o.buf.WriteString(priority(r.Level))
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := o.w.Write(o.buf.Bytes())
	return err
}

func (h journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return journalHandler{inner: h.inner.WithAttrs(as), out: h.out}
}

func (h journalHandler) WithGroup(name string) slog.Handler {
	return journalHandler{inner: h.inner.WithGroup(name), out: h.out}
}

// priority returns the syslog priority prefix of a level.
func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}
