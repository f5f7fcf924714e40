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
