// Package azuritetest gives tests an Azurite blob emulator: the one
// AZURITE_BLOB_ENDPOINT names, or one started by scripts/azurite.sh on first
// use (install it with `npm ci` in the module's root). A test that needs it
// calls Endpoint, which skips the test when Azurite is unavailable, or fails
// it under CI=true; the test binary's TestMain calls Stop after m.Run.
//
// It imports nothing of this module, so that package azblob's own tests can
// use it.
package azuritetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The well-known account of the Azurite emulator.
const (
	DevAccount = "devstoreaccount1"
	DevKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// azurite is the emulator of this process.
var azurite struct {
	once     sync.Once
	endpoint string // blob service URL, without a trailing "/"
	pid, dir string // of an Azurite this process started
	err      error
}

// Stop stops the Azurite this process started, if it did. Call it from
// TestMain once the tests have run.
func Stop() error {
	if azurite.pid == "" {
		return nil
	}
	return runScript("stop", "AZURITE_PID="+azurite.pid, "AZURITE_DIR="+azurite.dir)
}

// script returns the path of scripts/azurite.sh in this module.
func script() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not in a module")
	}
	return filepath.Join(filepath.Dir(gomod), "scripts", "azurite.sh"), nil
}

// runScript runs scripts/azurite.sh with arg and extra environment.
func runScript(arg string, env ...string) error {
	path, err := script()
	if err != nil {
		return err
	}
	cmd := exec.Command("bash", path, arg)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("azurite.sh %s: %w\n%s", arg, err, out)
	}
	return nil
}

// start starts Azurite through the script the way a shell user would,
// with eval, and records what it exported. The script also stops Azurite
// when this process exits, should a panic or a signal skip TestMain's
// cleanup.
func start() {
	path, err := script()
	if err != nil {
		azurite.err = err
		return
	}
	cmd := exec.Command("bash", "-c", `set -e; exports=$(bash "$1" start); eval "$exports"
		printf '%s\n%s\n%s\n' "$AZURITE_BLOB_ENDPOINT" "$AZURITE_PID" "$AZURITE_DIR"`, "bash", path)
	cmd.Env = append(os.Environ(), "AZURITE_WATCH_PID="+strconv.Itoa(os.Getpid()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		azurite.err = fmt.Errorf("azurite.sh start: %w\n%s", err, stderr.Bytes())
		return
	}
	fields := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(fields) != 3 || fields[1] == "" {
		azurite.err = fmt.Errorf("azurite.sh start printed %q", out)
		return
	}
	azurite.endpoint, azurite.pid, azurite.dir = fields[0], fields[1], fields[2]
}

// Endpoint returns the Azurite blob service URL, without a trailing "/",
// starting Azurite on first use. It skips the test when Azurite is
// unavailable, or fails it under CI=true.
func Endpoint(t testing.TB) string {
	t.Helper()
	azurite.once.Do(func() {
		if ep := os.Getenv("AZURITE_BLOB_ENDPOINT"); ep != "" {
			azurite.endpoint = strings.TrimSuffix(ep, "/")
			return
		}
		start()
	})
	if azurite.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Azurite is required under CI=true: %v", azurite.err)
		}
		t.Skipf("Azurite is unavailable: %v", azurite.err)
	}
	return azurite.endpoint
}

// ConnString returns the connection string of the Azurite dev account, as
// Endpoint starting Azurite if needed.
func ConnString(t testing.TB) string {
	t.Helper()
	return "DefaultEndpointsProtocol=http;AccountName=" + DevAccount + ";AccountKey=" + DevKey +
		";BlobEndpoint=" + Endpoint(t) + ";"
}
