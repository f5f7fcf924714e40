package location

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuthChoose: a SAS token wins, then a connection string (the file
// before the environment), then Azure's default credential chain.
func TestAuthChoose(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "conn")
	if err := os.WriteFile(file, []byte("AccountName=fromfile;AccountKey=a2V5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == ConnectionStringEnv {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		what     string
		auth     Auth
		env      string
		want     source
		wantConn string
	}{
		{"SAS over everything", Auth{SAS: "sig=x", ConnectionStringFile: file}, "AccountName=fromenv", fromSAS, ""},
		{"file over environment", Auth{ConnectionStringFile: file}, "AccountName=fromenv", fromConnectionString, "AccountName=fromfile;AccountKey=a2V5"},
		{"environment", Auth{}, " AccountName=fromenv\n", fromConnectionString, "AccountName=fromenv"},
		{"default chain", Auth{}, "", fromDefaultChain, ""},
	} {
		cred, src, err := tc.auth.choose(env(tc.env))
		if err != nil || src != tc.want || cred.ConnectionString != tc.wantConn || cred.Token != nil {
			t.Errorf("%s: choose = %+v, %d, %v; want source %d, connection string %q", tc.what, cred, src, err, tc.want, tc.wantConn)
		}
		if src == fromSAS && cred.SAS != string(tc.auth.SAS) {
			t.Errorf("%s: SAS not passed on", tc.what)
		}
	}

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	two := filepath.Join(dir, "two")
	if err := os.WriteFile(two, []byte("AccountName=a\nAccountKey=b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "missing"), empty, two} {
		_, _, err := Auth{ConnectionStringFile: f}.choose(env("AccountName=fromenv"))
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), f) {
			t.Errorf("connection string file %s: error %v, want one line naming the file", f, err)
		}
	}

	if !(Auth{}).hasConnectionString(env("x")) || !(Auth{ConnectionStringFile: file}).hasConnectionString(env("")) || (Auth{SAS: "sig=x"}).hasConnectionString(env("")) {
		t.Error("hasConnectionString is wrong")
	}
}

// TestNoCredential: a failing default chain gives one line saying what to
// do.
func TestNoCredential(t *testing.T) {
	err := noCredential("https://acct.blob.core.windows.net/vault", errors.New("DefaultAzureCredential: failed to acquire a token.\nAttempted credentials:\n\tEnvironmentCredential: missing"))
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, ConnectionStringEnv) || !strings.Contains(msg, "--connection-string-file") || !strings.Contains(msg, "failed to acquire a token") {
		t.Errorf("noCredential = %q", msg)
	}
}
