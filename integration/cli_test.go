package integration

import (
	"strings"
	"testing"
)

// TestHelpAndUsageExitCodes is the first finding of issue 14: 'azfs vault
// --help' exited 2, 'azmount --help' printed to stderr, and 'azfs' with no
// arguments exited 0. Help is asked for: it goes to stdout and exits 0. A
// missing or unknown command is a usage error: exit 2, told on stderr.
func TestHelpAndUsageExitCodes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		bin  string
		args []string
	}{
		{azfsBin, []string{"--help"}},
		{azfsBin, []string{"help"}},
		{azfsBin, []string{"vault", "--help"}},
		{azfsBin, []string{"vault", "create", "--help"}},
		{azfsBin, []string{"vault", "credentials", "revoke", "-h"}},
		{azfsBin, []string{"backup", "--help"}},
		{azmountBin, []string{"--help"}},
	} {
		r := e.run(tc.bin, tc.args...)
		if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("want usage and examples on stdout, nothing on stderr, exit 0:\n%s", r)
		}
	}
	for _, tc := range []struct {
		bin     string
		args    []string
		message string
	}{
		{azfsBin, nil, "azfs: name a command (see 'azfs --help')"},
		{azfsBin, []string{"bogus"}, `azfs: unknown command "bogus" (see 'azfs --help')`},
		{azfsBin, []string{"vault"}, "azfs: usage: azfs vault create PATH"},
		{azfsBin, []string{"vault", "bogus"}, "azfs: usage: azfs vault create PATH"},
		{azfsBin, []string{"points", "--bogus"}, "azfs: unknown flag: --bogus"},
		{azfsBin, []string{"key", "remove"}, "azfs: usage: azfs key remove SLOT-ID"},
		{azmountBin, nil, "azmount: name exactly one mountpoint"},
		{azmountBin, []string{"--bogus", "x"}, "azmount: unknown flag: --bogus"},
	} {
		r := e.run(tc.bin, tc.args...)
		lines := r.stderrLines()
		if r.code != 2 || r.stdout != "" || len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], tc.message) {
			t.Errorf("want exit 2 (usage) ending in %q on stderr:\n%s", tc.message, r)
		}
	}
	// Without a command, azfs shows what the commands are.
	if r := e.run(azfsBin); !strings.Contains(r.stderr, "Available Commands:") {
		t.Errorf("azfs without a command shows no usage:\n%s", r)
	}
}
