package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPassphraseSourceResolve(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		name      string
		flags     PassphraseSource
		env       map[string]string
		want      PassphraseSource
		wantUsage bool
	}{
		{"nothing", PassphraseSource{}, nil, PassphraseSource{}, false},
		{"file flag", PassphraseSource{File: "f"}, map[string]string{PassphraseCommandEnv: "c"}, PassphraseSource{File: "f"}, false},
		{"command flag over env file", PassphraseSource{Command: "c"}, map[string]string{PassphraseFileEnv: "e"}, PassphraseSource{Command: "c"}, false},
		{"env file", PassphraseSource{}, map[string]string{PassphraseFileEnv: "e"}, PassphraseSource{File: "e"}, false},
		{"env command", PassphraseSource{}, map[string]string{PassphraseCommandEnv: "c"}, PassphraseSource{Command: "c"}, false},
		{"both flags", PassphraseSource{File: "f", Command: "c"}, nil, PassphraseSource{}, true},
		{"both env", PassphraseSource{}, map[string]string{PassphraseFileEnv: "e", PassphraseCommandEnv: "c"}, PassphraseSource{}, true},
	} {
		env = tc.env
		got, err := tc.flags.resolve(getenv)
		var ue *UsageError
		if tc.wantUsage {
			if !errors.As(err, &ue) {
				t.Errorf("%s: want a usage error, got %v", tc.name, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestPassphraseSourceRead(t *testing.T) {
	t.Setenv(PassphraseFileEnv, "")
	t.Setenv(PassphraseCommandEnv, "")
	file := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(file, []byte("from a file 1234\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := (PassphraseSource{File: file}).Read("x", ""); err != nil || p != "from a file 1234" {
		t.Errorf("file: %q, %v", p, err)
	}
	// Windows Notepad's byte order mark is not part of the passphrase.
	if err := os.WriteFile(file, []byte("\ufefffrom Notepad 1234\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := (PassphraseSource{File: file}).Read("x", ""); err != nil || p != "from Notepad 1234" {
		t.Errorf("file with a BOM: %q, %v", p, err)
	}
	if p, err := (PassphraseSource{Command: "printf 'from a command 1234\\n'"}).Read("x", ""); err != nil || p != "from a command 1234" {
		t.Errorf("command: %q, %v", p, err)
	}
	t.Setenv(PassphraseCommandEnv, "echo from the environment")
	if p, err := (PassphraseSource{}).Read("x", ""); err != nil || p != "from the environment" {
		t.Errorf("environment command: %q, %v", p, err)
	}
	if _, err := (PassphraseSource{Command: "exit 3"}).Read("x", ""); err == nil {
		t.Error("a failing command gave a passphrase")
	}
	if _, err := (PassphraseSource{Command: "true"}).Read("x", ""); err == nil {
		t.Error("a command printing nothing gave an empty passphrase")
	}
}

// TestPassphraseSourceAsOpens: as package open's Passphrases, a source is
// given when a flag or the environment names one, and reads it.
func TestPassphraseSourceAsOpens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(file, []byte(utf8BOM+"from the file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(PassphraseFileEnv, "")
	t.Setenv(PassphraseCommandEnv, "")
	if given, err := (PassphraseSource{}).Given(); given || err != nil {
		t.Errorf("no source: given %v, %v", given, err)
	}
	t.Setenv(PassphraseFileEnv, file)
	if given, err := (PassphraseSource{}).Given(); !given || err != nil {
		t.Errorf("%s set: given %v, %v", PassphraseFileEnv, given, err)
	}
	if pass, err := (PassphraseSource{}).Passphrase("the passphrase of machine web01"); pass != "from the file" || err != nil {
		t.Errorf("Passphrase: %q, %v", pass, err)
	}
	if _, err := (PassphraseSource{File: file, Command: "true"}).Given(); ExitCode(err) != ExitUsage {
		t.Errorf("file and command: %v, want a usage error", err)
	}
}
