package main

import (
	"context"
	"errors"
	"os"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo/backup"
)

// streamFlags are backup's flags that back up a stream instead of paths.
type streamFlags struct {
	stdin, fromCommand *bool
	name               *string
}

func addStreamFlags(fs *pflag.FlagSet) *streamFlags {
	return &streamFlags{
		stdin:       fs.Bool("stdin", false, "back up standard input as one file, NAME (--stdin-filename): a database dump piped in"),
		fromCommand: fs.Bool("stdin-from-command", false, "back up the standard output of the command given after -- (run without a shell) as one file; if it exits non-zero or is killed, the backup fails and commits no point"),
		name:        fs.String("stdin-filename", "", "the `NAME` of the file --stdin or --stdin-from-command backs up (default: stdin, or the command's base name); the point's set is NAME unless --set names one"),
	}
}

// stream returns the stream the flags name (nil: none, back up paths),
// its command (the arguments after --) not started yet. Paths, lists and
// selection flags (sel) do not apply to a stream.
func (f *streamFlags) stream(ctx context.Context, fs *pflag.FlagSet, sel *selectFlags) (*backup.Stream, error) {
	switch {
	case *f.stdin && *f.fromCommand:
		return nil, cli.Usagef("--stdin and --stdin-from-command are exclusive")
	case !*f.stdin && !*f.fromCommand:
		if fs.Changed("stdin-filename") {
			return nil, cli.Usagef("--stdin-filename names the file of --stdin or --stdin-from-command")
		}
		return nil, nil
	}
	flag := "--stdin"
	if *f.fromCommand {
		flag = "--stdin-from-command"
	}
	if name := sel.changed(); name != "" {
		return nil, cli.Usagef("--%s does not apply to %s, which backs up one stream", name, flag)
	}
	var s *backup.Stream
	if *f.stdin {
		if fs.NArg() > 0 {
			return nil, cli.Usagef("--stdin backs up standard input: name no paths")
		}
		if term.IsTerminal(int(os.Stdin.Fd())) {
			return nil, cli.Usagef("--stdin: standard input is a terminal; pipe the data in")
		}
		s = backup.Stdin(*f.name, os.Stdin)
	} else {
		if fs.NArg() == 0 || fs.ArgsLenAtDash() != 0 {
			return nil, cli.Usagef("--stdin-from-command: name the command after --: azfs backup --stdin-from-command [--stdin-filename NAME] -- CMD ARGS...")
		}
		var err error
		if s, err = backup.Command(ctx, *f.name, fs.Args(), os.Stderr); err != nil {
			return nil, err
		}
	}
	if _, err := backup.StreamSet(s, fs.Lookup("set").Value.String()); err != nil {
		if errors.Is(err, backup.ErrStreamName) {
			return nil, cli.Usagef("--stdin-filename: %v", err)
		}
		return nil, cli.Usagef("--stdin-filename: %v; name its set with --set NAME", err)
	}
	return s, nil
}
