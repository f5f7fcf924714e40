package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// commandPaths returns the argument paths of every command below cmd
// that azfs defines (cobra's own help command aside).
func commandPaths(cmd *cobra.Command, path []string) [][]string {
	var paths [][]string
	for _, sub := range cmd.Commands() {
		if sub.Name() == "help" {
			continue
		}
		p := append(append([]string(nil), path...), sub.Name())
		paths = append(paths, p)
		paths = append(paths, commandPaths(sub, p)...)
	}
	return paths
}

// Every command's help (issue 14) has a one-line description, its
// arguments and an example, and 'azfs CMD --help' succeeds.
func TestEveryCommandHelp(t *testing.T) {
	paths := commandPaths(newRootCmd(), nil)
	if len(paths) < 20 {
		t.Fatalf("found %d commands, want the whole tree", len(paths))
	}
	for _, path := range append(paths, nil) {
		name := strings.Join(append([]string{"azfs"}, path...), " ")
		root := newRootCmd()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append(path, "--help"))
		cmd, err := root.ExecuteC()
		if err != nil {
			t.Errorf("%s --help: %v", name, err)
			continue
		}
		if cmd.Short == "" || strings.Contains(cmd.Short, "\n") {
			t.Errorf("%s: want a one-line description, got %q", name, cmd.Short)
		}
		if cmd.Example == "" || !strings.Contains(out.String(), "Examples:\n") {
			t.Errorf("%s --help shows no example:\n%s", name, out.String())
		}
		if !strings.Contains(out.String(), "Usage:\n  "+cmd.UseLine()) {
			t.Errorf("%s --help shows no usage line with its arguments:\n%s", name, out.String())
		}
		if errOut.Len() != 0 {
			t.Errorf("%s --help wrote to stderr: %s", name, errOut.String())
		}
	}
}

// withoutJSON are the commands that print no data, so have no --json, and
// why; every other command has --json (issue 14: "--json on every command
// that prints data"). A new command lands here only with a reason.
var withoutJSON = map[string]string{
	"agent":              "a service: it logs on stderr (journald's format), 'status --json' shows its state",
	"schedule disable":   "changes this host's state; 'status --json' shows it",
	"schedule enable":    "changes this host's state; 'status --json' shows it",
	"dump":               "prints a file's content, or a directory as tar or zip",
	"completion":         "prints a shell script",
	"key add":            "prints only a message; 'key list --json' lists the slots",
	"key remove":         "prints only a message; 'key list --json' lists the slots",
	"passphrase change":  "prints only a message",
	"certificate rotate": "prints only a message",
	"image mount":        "mounts, and prints only messages",
}

// TestEveryDataCommandHasJSON: every command that prints data takes
// --json, the others are listed in withoutJSON with the reason.
func TestEveryDataCommandHasJSON(t *testing.T) {
	seen := map[string]bool{}
	for _, path := range commandPaths(newRootCmd(), nil) {
		name := strings.Join(path, " ")
		root := newRootCmd()
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cmd.HasSubCommands() && strings.HasSuffix(cmd.Use, " COMMAND") {
			continue // a group: it runs nothing ('vault credentials' runs, and has a subcommand)
		}
		_, exempt := withoutJSON[name]
		seen[name] = true
		switch hasJSON := cmd.Flags().Lookup("json") != nil; {
		case !hasJSON && !exempt:
			t.Errorf("azfs %s has no --json (or add it to withoutJSON with the reason it prints no data)", name)
		case hasJSON && exempt:
			t.Errorf("azfs %s has --json: drop it from withoutJSON", name)
		}
	}
	for name := range withoutJSON {
		if !seen[name] {
			t.Errorf("withoutJSON names %q, which is no command", name)
		}
	}
}
