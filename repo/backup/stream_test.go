package backup_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/azfs/azfs/internal/testfiles"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
	"github.com/azfs/azfs/repo/tree"
)

// trickle hands out its bytes a few at a time, as a pipe does.
type trickle struct{ r io.Reader }

func (t trickle) Read(p []byte) (int, error) { return t.r.Read(p[:min(len(p), 4093)]) }

// pointNames lists the point objects of st.
func pointNames(t *testing.T, st storage.Storage) []string {
	t.Helper()
	var out []string
	if err := st.List(context.Background(), "points/", func(fi storage.Info) error { out = append(out, fi.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBackupStream: a stream becomes a point holding one file at the top
// level, chunked like any file (several chunks, deduplicated against the
// vault), owned by the running user, mode 0600, its mtime the run's
// start; the point's paths are that file and its set is the file's name.
func TestBackupStream(t *testing.T) {
	data := testfiles.RandomBytes(5<<20+123, 7)
	v := newVault(t, mem.New())
	before := time.Now().Add(-time.Second)
	p, err := backup.Run(context.Background(), v, backup.Options{
		Stream:  &backup.Stream{Name: "db.sql", Data: io.NopCloser(trickle{bytes.NewReader(data)})},
		Machine: "m",
		Tags:    []string{"pg", "daily", "pg"},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !slices.Equal(p.Paths, []string{"/db.sql"}) || p.SetName != "db.sql" || p.Set() != "db.sql" || !slices.Equal(p.Tags, []string{"daily", "pg"}) {
		t.Errorf("point paths %q, set %q, tags %q; want [/db.sql], db.sql, [daily pg]", p.Paths, p.SetName, p.Tags)
	}
	if s := p.Stats; s.Files != 1 || s.FilesNew != 1 || s.Bytes != uint64(len(data)) || s.BytesRead != uint64(len(data)) || s.BytesStored == 0 || p.Partial {
		t.Errorf("stats %+v, partial %v; want one new file of %d bytes read and stored", s, p.Partial, len(data))
	}
	v = loaded(t, v)
	root, err := v.Part(context.Background(), p.Root)
	if err != nil {
		t.Fatal(err)
	}
	if got := listing(t, v, root.Nodes[0]); !slices.Equal(got, []string{"db.sql"}) {
		t.Fatalf("the point's top level holds %q, want only db.sql", got)
	}
	n := lookup(t, v, p, "/db.sql")
	if n.Type != tree.File || n.Mode != 0o600 || n.UID != uint32(os.Getuid()) || n.GID != uint32(os.Getgid()) || n.Size != uint64(len(data)) {
		t.Errorf("node type %v mode %o uid %d gid %d size %d; want a file, 0600, the running user's, %d bytes", n.Type, n.Mode, n.UID, n.GID, n.Size, len(data))
	}
	if mt := n.MTime.Time(); mt.Before(before) || mt.After(time.Now()) {
		t.Errorf("mtime %s, want the run's start", mt)
	}
	if len(n.Extents) < 2 {
		t.Errorf("%d extents: want the stream chunked like a file", len(n.Extents))
	}
	if got := content(t, v, n); !bytes.Equal(got, data) {
		t.Errorf("the stored file differs from the stream")
	}

	// The same bytes again store nothing new but the listing.
	again, err := backup.Run(context.Background(), v, backup.Options{Stream: &backup.Stream{Name: "db.sql", Data: io.NopCloser(bytes.NewReader(data))}, Set: "nightly"})
	if err != nil {
		t.Fatal(err)
	}
	if again.SetName != "nightly" || again.Stats.BytesStored > 64<<10 {
		t.Errorf("second stream: set %q, stored %d bytes; want set nightly and only a listing", again.SetName, again.Stats.BytesStored)
	}
}

// failingClose is a stream whose end reports a failure, as a command that
// exits non-zero does.
type failingClose struct {
	io.Reader
	err error
}

func (f failingClose) Close() error { return f.err }

var errDumpFailed = errors.New("pg_dump exited with status 1")

// TestBackupStreamFails: when the stream's Close or Read fails, no point
// is committed and Run returns that error.
func TestBackupStreamFails(t *testing.T) {
	for name, data := range map[string]io.ReadCloser{
		"close": failingClose{bytes.NewReader(testfiles.RandomBytes(3<<20, 1)), errDumpFailed},
		"read":  io.NopCloser(io.MultiReader(bytes.NewReader(testfiles.RandomBytes(3<<20, 2)), iotestErrReader{errDumpFailed})),
	} {
		st := mem.New()
		v := newVault(t, st)
		p, err := backup.Run(context.Background(), v, backup.Options{Stream: &backup.Stream{Name: "db.sql", Data: data}})
		if p != nil || !errors.Is(err, errDumpFailed) {
			t.Errorf("%s: Run = %v, %v; want no point and the stream's error", name, p, err)
		}
		if got := pointNames(t, st); len(got) != 0 {
			t.Errorf("%s: points committed: %v", name, got)
		}
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// TestBackupStreamRefused: a bad stream name, a stream with paths, a bad
// tag or a stream name that is no set name (without a set) are refused
// before anything is read.
func TestBackupStreamRefused(t *testing.T) {
	v := newVault(t, mem.New())
	stream := func(name string) *backup.Stream {
		return &backup.Stream{Name: name, Data: io.NopCloser(strings.NewReader("x"))}
	}
	for name, tc := range map[string]struct {
		opts backup.Options
		want error
	}{
		"slash":        {backup.Options{Stream: stream("a/b")}, backup.ErrStreamName},
		"dot dot":      {backup.Options{Stream: stream("..")}, backup.ErrStreamName},
		"empty":        {backup.Options{Stream: stream("")}, backup.ErrStreamName},
		"nul":          {backup.Options{Stream: stream("a\x00b")}, backup.ErrStreamName},
		"no set name":  {backup.Options{Stream: stream("my dump.sql")}, repo.ErrSetName},
		"stream+paths": {backup.Options{Stream: stream("x"), Paths: []string{t.TempDir()}}, nil},
		"bad tag":      {backup.Options{Stream: stream("x"), Tags: []string{"a,b"}}, repo.ErrTag},
		"paths badtag": {backup.Options{Paths: []string{t.TempDir()}, Tags: []string{"a b"}}, repo.ErrTag},
	} {
		if p, err := backup.Run(context.Background(), v, tc.opts); p != nil || err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: Run = %v, %v; want %v", name, p, err, tc.want)
		}
	}
	// A name that is no set name is fine with a set.
	if _, err := backup.Run(context.Background(), v, backup.Options{Stream: stream("my dump.sql"), Set: "dump"}); err != nil {
		t.Errorf("stream %q with set dump: %v", "my dump.sql", err)
	}
}

// TestStreamSet: a stream's point is in the set named, else in the set of
// its file name, which must then be a set name; a bad file name is
// ErrStreamName either way. Stdin names its stream "stdin" by default.
func TestStreamSet(t *testing.T) {
	for _, tc := range []struct {
		name, set, want string
		err             error
	}{
		{"db.sql", "", "db.sql", nil},
		{"my dump.sql", "dump", "dump", nil},
		{"my dump.sql", "", "", repo.ErrSetName},
		{"a/b", "dump", "", backup.ErrStreamName},
		{"..", "", "", backup.ErrStreamName},
	} {
		got, err := backup.StreamSet(backup.Stdin(tc.name, strings.NewReader("x")), tc.set)
		if got != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("StreamSet(%q, %q) = %q, %v; want %q, %v", tc.name, tc.set, got, err, tc.want, tc.err)
		}
	}
	s := backup.Stdin("", strings.NewReader("data"))
	if got, err := io.ReadAll(s.Data); s.Name != "stdin" || string(got) != "data" || err != nil {
		t.Errorf("Stdin(\"\") = %q reading %q, %v", s.Name, got, err)
	}
}

// TestCommandStream: a command's output is the stream; its exit status
// decides: non-zero or a signal fails the run with an error naming the
// command and the status, and commits nothing.
func TestCommandStream(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	v := newVault(t, st)
	var stderr bytes.Buffer
	s, err := backup.Command(ctx, "", []string{"sh", "-c", "printf 'hello\\n'; echo note >&2"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "sh" {
		t.Errorf("default name %q, want the command's base name sh", s.Name)
	}
	p, err := backup.Run(ctx, v, backup.Options{Stream: s})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := content(t, loaded(t, v), lookup(t, loaded(t, v), p, "/sh")); string(got) != "hello\n" {
		t.Errorf("stored %q, want the command's output", got)
	}
	if stderr.String() != "note\n" {
		t.Errorf("the command's stderr went to %q, want it passed through", stderr.String())
	}

	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"sh", "-c", "head -c 3000000 /dev/zero; exit 3"}, `command failed: "sh" exited with status 3`},
		{[]string{"/bin/sh", "-c", "kill -TERM $$"}, `command failed: "/bin/sh" was killed by signal SIGTERM`},
		{[]string{"false"}, `command failed: "false" exited with status 1`},
	} {
		s, err := backup.Command(ctx, "out.bin", tc.argv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		p, err := backup.Run(ctx, v, backup.Options{Stream: s})
		if p != nil || !errors.Is(err, backup.ErrCommand) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: Run = %v, %v; want no point and %q", tc.argv, p, err, tc.want)
		}
	}
	if got := pointNames(t, st); len(got) != 1 {
		t.Errorf("%d points, want only the successful command's", len(got))
	}
	if _, err := backup.Command(ctx, "", []string{"azfs-no-such-command"}, io.Discard); err == nil || !strings.Contains(err.Error(), `"azfs-no-such-command"`) {
		t.Errorf("a missing command: %v, want an error naming it", err)
	}
	if _, err := backup.Command(ctx, "", nil, io.Discard); err == nil {
		t.Errorf("no command: want an error")
	}
}

// TestCommandStreamStopsCommand: when the run stops before the command's
// output ends (cancelled, as by Ctrl-C), the command is killed and Run
// returns, even for an endless output of chunks the vault already has.
func TestCommandStreamStopsCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	v := newVault(t, mem.New())
	s, err := backup.Command(ctx, "zero", []string{"cat", "/dev/zero"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { _, err := backup.Run(ctx, v, backup.Options{Stream: s}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context was cancelled: the command was not stopped")
	}
}
