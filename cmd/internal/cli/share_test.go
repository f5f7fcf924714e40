package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/azfs/azfs/repo/storage/smb"
)

// TestSharePassword: the share's password comes from --smb-password-file,
// else from the file AZFS_SMB_PASSWORD_FILE names, one line with a UTF-8
// BOM and line ending dropped; an empty or multi-line file is refused
// without showing it.
func TestSharePassword(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flagFile := write("flag", "from-flag\n")
	envFile := write("env", utf8BOM+"from-env\r\n")
	loc := smb.Location{Host: "nas", User: "backup", Share: "v"}

	t.Setenv(SMBPasswordFileEnv, envFile)
	if got, err := (ShareFlags{PasswordFile: flagFile}).password(loc); err != nil || got != "from-flag" {
		t.Errorf("with --smb-password-file: %q, %v", got, err)
	}
	if got, err := (ShareFlags{}).password(loc); err != nil || got != "from-env" {
		t.Errorf("with %s: %q, %v", SMBPasswordFileEnv, got, err)
	}
	for _, bad := range []string{"", "\n", "two\nlines-SECRET\n"} {
		f := write("bad", bad)
		_, err := (ShareFlags{PasswordFile: f}).password(loc)
		if err == nil || !strings.Contains(err.Error(), "want the password on one line") || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("password file %q: %v, want a refusal without its content", bad, err)
		}
	}
	if _, err := (ShareFlags{PasswordFile: filepath.Join(dir, "missing")}).password(loc); err == nil || !strings.Contains(err.Error(), "--smb-password-file") {
		t.Errorf("missing password file: %v, want an error naming the flag", err)
	}
}
