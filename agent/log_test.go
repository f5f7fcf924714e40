package agent

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestJournalLogger(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, true).With("machine", "web01")
	log.Info("backup started")
	log.Warn("skipped", "path", "/etc/shadow")
	log.Error("backup failed", "err", errors.New("vault unreachable"))
	log.Debug("not shown")
	want := []string{
		`<6>level=INFO msg="backup started" machine=web01`,
		`<4>level=WARN msg=skipped machine=web01 path=/etc/shadow`,
		`<3>level=ERROR msg="backup failed" machine=web01 err="vault unreachable"`,
	}
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTextLogger(t *testing.T) {
	var buf bytes.Buffer
	NewLogger(&buf, false).Info("backup started")
	if line := buf.String(); !strings.HasPrefix(line, "time=") || !strings.Contains(line, `level=INFO msg="backup started"`) {
		t.Errorf("text line %q, want slog's text format with a time", line)
	}
	if priority(slog.LevelDebug) != "<7>" {
		t.Errorf("debug priority %q", priority(slog.LevelDebug))
	}
}
