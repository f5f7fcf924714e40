package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/chunker"
	"github.com/azfs/azfs/repo/tree"
)

// Stream is a source of one file that is not a directory walk: its bytes
// come from a pipe ('azfs backup --stdin', a command's output). Its point
// holds the file at its top level; see Options.Stream.
type Stream struct {
	// Name is the file's name in the point: not empty, not "." or "..",
	// without '/' or NUL, at most 255 bytes (CheckStreamName).
	Name string
	// Data is read to its end, then closed. A Read or Close error fails
	// the run: no point is committed. Run closes Data in every case, also
	// when it fails before the end (Close may be called more than once).
	Data io.ReadCloser
}

// streamMode is the permission of a stream's file in its point: the
// stream is often a database dump, readable by its owner only.
const streamMode = 0o600

// streamDirMode is the permission of the point's top directory.
const streamDirMode = 0o755

// ErrStreamName reports a stream file name that is not valid.
var ErrStreamName = errkind.New(errkind.Invalid, "invalid stream file name")

// CheckStreamName accepts the name of a stream's file: a single file name,
// not "." or "..", without '/' or NUL, of 1 to 255 bytes.
func CheckStreamName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 255 || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("%w %q: use one file name (no '/'), not . or .., of at most 255 bytes", ErrStreamName, name)
	}
	return nil
}

// Stdin returns a Stream of r, standard input piped in ('azfs backup
// --stdin'), called name in the point ("stdin" when name is empty). Run
// reads it to its end and does not close r.
func Stdin(name string, r io.Reader) *Stream {
	if name == "" {
		name = "stdin"
	}
	return &Stream{Name: name, Data: io.NopCloser(r)}
}

// StreamSet checks the name of s and returns the backup set its point is
// in: set when that names one, else the stream's file name, which must
// then be a valid set name (repo.CheckSetName).
func StreamSet(s *Stream, set string) (string, error) {
	if err := CheckStreamName(s.Name); err != nil {
		return "", err
	}
	if set != "" {
		return set, nil
	}
	if err := repo.CheckSetName(s.Name); err != nil {
		return "", fmt.Errorf("a stream's point is in the set of its file name unless a set is named: %w", err)
	}
	return s.Name, nil
}

// ErrCommand reports a command whose output a run backs up that could not
// start, exited with a non-zero status or was killed by a signal.
var ErrCommand = errkind.New(errkind.Other, "command failed")

// Command returns a Stream of the standard output of the command argv,
// called name in the point (argv[0]'s base name when name is empty). The
// command runs without a shell (argv[0] is looked up in PATH), on the
// first read: its standard input is /dev/null, its standard error goes to
// stderr. Closing the stream waits for the command: a non-zero exit or a
// death by a signal is an error wrapping ErrCommand that names argv[0] and
// the status. Closed before the output's end (the run failed), the command
// is killed first; so it is when ctx ends.
func Command(ctx context.Context, name string, argv []string, stderr io.Writer) (*Stream, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("%w: no command given", ErrCommand)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if cmd.Err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCommand, cmd.Err)
	}
	cmd.Stderr = stderr
	// The command's own children may hold its stdout: the pipe is closed
	// this long after it exits (Wait returns then).
	cmd.WaitDelay = 10 * time.Second
	if name == "" {
		name = filepath.Base(argv[0])
	}
	return &Stream{Name: name, Data: &commandOutput{cmd: cmd}}, nil
}

// commandOutput reads a command's standard output, starting the command
// on the first read.
type commandOutput struct {
	cmd     *exec.Cmd
	out     io.ReadCloser // nil until started
	eof     bool
	started bool

	closeOnce sync.Once
	closeErr  error
}

func (c *commandOutput) Read(p []byte) (int, error) {
	if !c.started {
		c.started = true
		out, err := c.cmd.StdoutPipe()
		if err == nil {
			err = c.cmd.Start()
		}
		if err != nil {
			return 0, fmt.Errorf("%w: start %q: %w", ErrCommand, c.cmd.Args[0], err)
		}
		c.out = out
	}
	if c.out == nil {
		return 0, io.ErrUnexpectedEOF // its start failed: reported by the read that tried
	}
	n, err := c.out.Read(p)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// Close waits for the command (killing it first when its output was not
// read to the end) and reports how it ended.
func (c *commandOutput) Close() error {
	c.closeOnce.Do(func() {
		if c.out == nil {
			return // never started
		}
		if !c.eof {
			_ = c.cmd.Process.Kill() // our own child, by its PID
		}
		err := c.cmd.Wait()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			c.closeErr = fmt.Errorf("%w: %q %s", ErrCommand, c.cmd.Args[0], exitStatus(exit.ProcessState))
		case err != nil:
			c.closeErr = fmt.Errorf("%w: %q: %w", ErrCommand, c.cmd.Args[0], err)
		}
	})
	return c.closeErr
}

// exitStatus says how a process that failed ended: "exited with status
// 3", "was killed by signal SIGTERM".
func exitStatus(s *os.ProcessState) string {
	if ws, ok := s.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "was killed by signal " + unix.SignalName(ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", s.ExitCode())
}

// streamRoot backs up s as the only entry of the point's top directory,
// with the running user as owner, the permission streamMode and start as
// its times. A stream that cannot be read to its end, or whose Close
// fails, stops the run (a part of a dump is no backup of it).
func (b *backuper) streamRoot(ctx context.Context, s *Stream, start time.Time) *future {
	now := tree.UnixTime(start.Unix(), int64(start.Nanosecond()))
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	owned := func(name string, typ tree.Type, mode uint32) tree.Node {
		return tree.Node{Name: name, Type: typ, Mode: mode, UID: uid, GID: gid, User: b.names.user(uid), Group: b.names.group(gid),
			MTime: now, ATime: now, CTime: now, Links: 1}
	}
	file := owned(s.Name, tree.File, streamMode)
	b.stats.files.Add(1)
	b.stats.new.Add(1)
	cfg := b.v.Config()
	ch := chunker.New(s.Data, b.v.Keys().ChunkerSeed, chunker.Params{Min: cfg.Chunker.Min, Avg: cfg.Chunker.Avg, Max: cfg.Chunker.Max})
	size, err := b.chunkInto(ctx, ch, 0, "/"+s.Name, 1, &file, b.v.Keys().NewHasher(keys.KindData))
	closeErr := s.Data.Close()
	switch {
	case ctx.Err() != nil:
		// Run reports why it stopped.
	case err != nil:
		b.setFatal(fmt.Errorf("read %q: %w", s.Name, err))
	case closeErr != nil:
		b.setFatal(closeErr)
	}
	file.Size = size
	b.stats.bytes.Add(size)
	b.prog.Files.Add(1)
	b.prog.BytesDone.Add(size)
	return b.directory(ctx, owned("", tree.Dir, streamDirMode), func(emit func(*future)) { emit(resolved(file)) })
}
