package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
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
		{azfsBin, []string{"backup", "--compression", "max", "/tmp"}, `azfs: --compression: unknown compression "max": want fast, balanced or small`},
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

// oneFileTree makes the directory src in e's directory, holding one file,
// and returns its path.
func oneFileTree(e *env) string {
	src := mkdir(e.t, filepath.Join(e.dir, "src"))
	writeFile(e.t, filepath.Join(src, "a"), []byte("a"), 0o644)
	return src
}

// TestVersion: 'azfs version', 'azfs --version' and 'azmount --version'
// name the module version and the build (issue 14).
func TestVersion(t *testing.T) {
	e := newEnv(t)
	r := e.mustAzfs("version")
	if !strings.HasPrefix(r.stdout, "azfs ") || !strings.Contains(r.stdout, runtime.Version()) {
		t.Errorf("azfs version:\n%s", r)
	}
	if flag := e.mustAzfs("--version"); flag.stdout != r.stdout {
		t.Errorf("azfs --version says %q, azfs version %q", flag.stdout, r.stdout)
	}
	if m := e.run(azmountBin, "--version"); m.code != 0 || m.stdout != "azmount "+strings.TrimPrefix(r.stdout, "azfs ") {
		t.Errorf("azmount --version:\n%s", m)
	}
	var v struct {
		Version, Revision, Go, Platform string
		Modified                        bool
	}
	if err := json.Unmarshal([]byte(e.mustAzfs("version", "--json").stdout), &v); err != nil || v.Version == "" || v.Go == "" {
		t.Errorf("azfs version --json: %+v, %v", v, err)
	}
}

// TestCompletionScriptsLoad: the completion scripts (issue 14) load in
// their shell, and complete from the command tree.
func TestCompletionScriptsLoad(t *testing.T) {
	e := newEnv(t)
	script := "source <(" + azfsBin + " completion bash) && complete -p azfs"
	if out, err := exec.Command("bash", "-c", script).CombinedOutput(); err != nil || !strings.Contains(string(out), "azfs") {
		t.Errorf("bash -c %q: %v\n%s", script, err, out)
	}
	for shell, want := range map[string]string{"zsh": "#compdef azfs", "fish": "complete -c azfs"} {
		if r := e.mustAzfs("completion", shell); !strings.Contains(r.stdout, want) {
			t.Errorf("azfs completion %s holds no %q:\n%.300s", shell, want, r.stdout)
		}
	}
	if r := e.mustAzfs("__complete", "vault", "cr"); !strings.Contains(r.stdout, "create\t") || !strings.Contains(r.stdout, "credentials\t") {
		t.Errorf("completing 'azfs vault cr':\n%s", r)
	}
	if r := e.azfs("completion", "tcsh"); r.code != 2 {
		t.Errorf("an unknown shell: want exit 2:\n%s", r)
	}
}

// TestManPages: the man pages generated from the command trees ('make
// man') cover every command, with its example, and render.
func TestManPages(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.dir, "man")
	e.mustAzfs("--generate-man-pages", dir)
	if r := e.run(azmountBin, "--generate-man-pages", dir); r.code != 0 {
		t.Fatalf("azmount man page:\n%s", r)
	}
	for _, page := range []string{"azfs.1", "azfs-vault-create.1", "azfs-vault-credentials-revoke.1", "azfs-backup.1", "azfs-version.1", "azmount.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Errorf("no man page %s: %v", page, err)
			continue
		}
		if !bytes.Contains(b, []byte(".SH EXAMPLE")) || !bytes.Contains(b, []byte(".SH OPTIONS")) {
			t.Errorf("man page %s has no example or options:\n%s", page, b)
		}
	}
	if _, err := exec.LookPath("groff"); err == nil {
		out, err := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", filepath.Join(dir, "azfs-backup.1")).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff on azfs-backup.1: %v\n%s", err, out)
		}
	}
}

// TestEnvironmentVariables: AZFS_VAULT, AZFS_PASSPHRASE_FILE and
// AZFS_PASSPHRASE_COMMAND (issue 14) stand for --vault, --passphrase-file
// and --passphrase-command, which win over them; without any, the error
// says whose passphrase is needed.
func TestEnvironmentVariables(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	point := e.backup(oneFileTree(e)).Point

	// Another host knows nothing of the vault: the environment names it
	// and the machine's passphrase.
	other := newEnv(t)
	listed := func(r result) bool { return r.code == 0 && strings.Contains(r.stdout, point[:8]) }
	r := other.azfs("points", "--machine", testMachine)
	if r.code != 2 || !strings.Contains(r.stderr, "no default vault") || !strings.Contains(r.stderr, "AZFS_VAULT") {
		t.Errorf("no vault anywhere: want exit 2 naming AZFS_VAULT:\n%s", r)
	}
	other.extraEnv = []string{"AZFS_VAULT=" + e.vault}
	r = other.azfs("points", "--machine", testMachine)
	if r.code != 2 || !strings.Contains(r.stderr, "the passphrase of machine "+testMachine+" (or the vault owner's) is needed") || !strings.Contains(r.stderr, "AZFS_PASSPHRASE_FILE") {
		t.Errorf("no passphrase: want exit 2 saying whose is needed:\n%s", r)
	}
	other.extraEnv = []string{"AZFS_VAULT=" + e.vault, "AZFS_PASSPHRASE_FILE=" + e.passFile}
	if r := other.azfs("points", "--machine", testMachine); !listed(r) {
		t.Errorf("AZFS_VAULT and AZFS_PASSPHRASE_FILE: want the point listed:\n%s", r)
	}
	other.extraEnv = []string{"AZFS_VAULT=" + e.vault, "AZFS_PASSPHRASE_COMMAND=cat '" + e.passFile + "'"}
	if r := other.azfs("points", "--machine", testMachine); !listed(r) {
		t.Errorf("AZFS_PASSPHRASE_COMMAND: want the point listed:\n%s", r)
	}
	// Flags win over the environment.
	wrong := filepath.Join(e.dir, "wrong")
	writeFile(t, wrong, []byte("not the passphrase at all\n"), 0o600)
	other.extraEnv = []string{"AZFS_VAULT=" + filepath.Join(e.dir, "nowhere"), "AZFS_PASSPHRASE_FILE=" + wrong}
	if r := other.azfs("points", "--vault", e.vault, "--machine", testMachine, "--passphrase-command", "cat '"+e.passFile+"'"); !listed(r) {
		t.Errorf("flags over the environment: want the point listed:\n%s", r)
	}
	other.extraEnv = []string{"AZFS_VAULT=" + e.vault, "AZFS_PASSPHRASE_FILE=" + e.passFile, "AZFS_PASSPHRASE_COMMAND=true"}
	if r := other.azfs("points", "--machine", testMachine); r.code != 2 || !strings.Contains(r.stderr, "both set") {
		t.Errorf("both passphrase variables: want exit 2:\n%s", r)
	}
}

// startLongBackup starts 'azfs backup' of a source of 768 MiB of random
// bytes and returns once its first pack is in the vault: it is reading
// then, for seconds yet.
func startLongBackup(e *env) (*exec.Cmd, *syncBuffer, string) {
	e.t.Helper()
	src := mkdir(e.t, filepath.Join(e.dir, "src"))
	writeRandom(e.t, filepath.Join(src, "big"), 768<<20, 14)
	cmd := e.command(nil, azfsBin, "backup", src)
	stderr := new(syncBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	data := filepath.Join("machines", testMachine, "data")
	for deadline := time.Now().Add(cmdTimeout); len(vaultFiles(e.t, e.vault, data)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("the backup stored no pack within %v:\n%s", cmdTimeout, stderr.String())
		}
	}
	return cmd, stderr, src
}

// TestBackupInterrupted: Ctrl-C during a backup (issue 14) printed
// "context canceled" twice, once as a skipped file, and exited 1. It says
// once that the backup was interrupted and exits 130.
func TestBackupInterrupted(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		e := newEnv(t)
		e.createVault()
		cmd, stderr, _ := startLongBackup(e)
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if code != 130 || len(lines) != 1 || lines[0] != "azfs: backup interrupted: no recovery point was committed" {
			t.Errorf("%v: want one line and exit 130, got exit %d (%v):\n%s", sig, code, err, stderr.String())
		}
	}
}

// TestInformationalLinesUnprefixed: lines that inform (waiting for a
// running backup) carry no "azfs:" prefix, which marks errors and
// warnings (issue 14).
func TestInformationalLinesUnprefixed(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	_, _, src := startLongBackup(e)
	second := e.command(nil, azfsBin, "backup", "--wait", src)
	var stderr syncBuffer
	second.Stderr = &stderr
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { second.Process.Kill(); second.Wait() }()
	for deadline := time.Now().Add(cmdTimeout); !strings.Contains(stderr.String(), "waiting for the backup") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if line := stderr.String(); !strings.HasPrefix(line, "waiting for the backup of machine "+testMachine) {
		t.Errorf("want the waiting line without a prefix, got:\n%s", line)
	}
}

// TestMountAllowOther: 'azmount --allow-other' (issue 14) lets another
// local user read the mount, each file as its mode allows; without it the
// kernel refuses every user but the one who mounted.
func TestMountAllowOther(t *testing.T) {
	requireFUSE(t)
	requireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		unavailable(t, "setpriv (util-linux) is needed to read as another user: "+err.Error())
	}
	e := newEnv(t)
	e.createVault()
	// The point holds the source's path: another user must be able to
	// walk it.
	for _, d := range []string{filepath.Dir(e.dir), e.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src := mkdir(t, filepath.Join(e.dir, "src"))
	writeFile(t, filepath.Join(src, "shared.txt"), []byte("for everyone\n"), 0o644)
	writeFile(t, filepath.Join(src, "private.txt"), []byte("root only\n"), 0o600)
	e.backup(src)
	// The mount point too, outside the test's private directory.
	parent, err := os.MkdirTemp("", "azfs-allow-other-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func(path string) (string, error) {
		out, err := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--", "cat", path).CombinedOutput()
		return string(out), err
	}
	plain := e.mount(mkdir(t, filepath.Join(parent, "plain")), "--point", "latest")
	if out, err := asNobody(filepath.Join(plain.dir, src, "shared.txt")); err == nil {
		t.Errorf("without --allow-other another user read the mount: %q", out)
	}
	shared := e.mount(mkdir(t, filepath.Join(parent, "shared")), "--point", "latest", "--allow-other")
	if out, err := asNobody(filepath.Join(shared.dir, src, "shared.txt")); err != nil || out != "for everyone\n" {
		t.Errorf("with --allow-other another user could not read a 0644 file: %v\n%s", err, out)
	}
	if out, err := asNobody(filepath.Join(shared.dir, src, "private.txt")); err == nil {
		t.Errorf("with --allow-other another user read a 0600 file of root's: %q", out)
	}
}

// TestPassphraseChangeSaysWhatChanged: on the owner's machine, whose
// machine and owner slots share the passphrase 'vault create' set, a
// passphrase change said "the old one no longer opens its points" while the
// old passphrase still opened the owner slots (issue 14). It says that the
// machine's slots changed and the owner's did not, and both hold: the new
// passphrase opens the machine's points, the old one the owner slots (and,
// as the owner's, every machine's points).
func TestPassphraseChangeSaysWhatChanged(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	e.backup(oneFileTree(e))
	pin := strings.TrimSpace(e.mustAzfs("vault", "pin").stdout)
	newPass := filepath.Join(e.dir, "new-passphrase")
	r := e.mustAzfs("passphrase", "change", "--generate-passphrase", newPass, "--pin", pin)
	for _, want := range []string{
		"passphrase of machine " + testMachine + " changed: its key slots open with the new passphrase, no longer with the old one",
		"the owner passphrase is unchanged",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("want %q:\n%s", want, r)
		}
	}
	other := newEnv(t)
	other.mustAzfs("points", "--vault", e.vault, "--machine", testMachine, "--passphrase-file", newPass)
	other.mustAzfs("key", "list", "--vault", e.vault, "--passphrase-file", e.passFile)
	if r := other.azfs("key", "list", "--vault", e.vault, "--passphrase-file", newPass); r.code == 0 {
		t.Errorf("the machine's new passphrase opens the owner slots:\n%s", r)
	}
}

// TestPointTimeAsPrinted: 'points' printed local times without a zone, a
// mount of every point names them in UTC, and '--point' did not take the
// time as 'points' printed it (issue 14). 'points' prints the time with
// its offset, and '--point' takes that, and the mount's name, back.
func TestPointTimeAsPrinted(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(e.dir, "src"))
	writeFile(t, filepath.Join(src, "f"), []byte("first\n"), 0o644)
	first := e.backup(src)
	time.Sleep(time.Second) // the points' times differ in their seconds
	writeFile(t, filepath.Join(src, "f"), []byte("second\n"), 0o644)
	e.backup(src)

	var printed string
	for _, l := range strings.Split(e.mustAzfs("points").stdout, "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(first.Point, f[0]) {
			printed = strings.Join(f[2:5], " ")
		}
	}
	if _, err := time.Parse("2006-01-02 15:04:05 -0700", printed); err != nil {
		t.Fatalf("points prints the first point's time as %q, without a zone: %v", printed, err)
	}
	for _, sel := range []string{printed, first.Time.UTC().Format("2006-01-02T15-04-05Z")} {
		m := e.mount(mkdir(t, filepath.Join(e.dir, "mnt", strings.ReplaceAll(sel, " ", "_"))), "--point", sel)
		if b, err := os.ReadFile(filepath.Join(m.dir, src, "f")); err != nil || string(b) != "first\n" {
			t.Errorf("--point %q: want the first point, read %q, %v", sel, b, err)
		}
	}
}

// TestOwnerListsAnotherMachine: the owner could not list another machine's
// points ('points --machine web01' asked for "a passphrase" without saying
// whose), and forgetting said the same of the owner passphrase it needs
// (issue 14). On the owner's machine the escrow opens web01's area with no
// passphrase; elsewhere the error says whose passphrase is needed, and the
// owner's opens it as well as web01's own.
func TestOwnerListsAnotherMachine(t *testing.T) {
	owner := newEnv(t)
	owner.createVault()
	creds := mcCredentials(t, owner, "web01.creds")
	web, webPass := mcRegister(t, owner, creds, "web01")
	point := web.backup(oneFileTree(web)).Point
	listed := func(r result) bool { return r.code == 0 && strings.Contains(r.stdout, point[:8]) }

	if r := owner.azfs("points", "--machine", "web01"); !listed(r) {
		t.Errorf("the owner's machine lists web01's points through the escrow:\n%s", r)
	}
	elsewhere := newEnv(t)
	elsewhere.extraEnv = []string{"AZFS_VAULT=" + owner.vault}
	if r := elsewhere.azfs("points", "--machine", "web01"); r.code != 2 || !strings.Contains(r.stderr, "the passphrase of machine web01 (or the vault owner's) is needed") {
		t.Errorf("without a passphrase: want exit 2 saying whose is needed:\n%s", r)
	}
	for _, pass := range []string{webPass, owner.passFile} {
		if r := elsewhere.azfs("points", "--machine", "web01", "--passphrase-file", pass); !listed(r) {
			t.Errorf("points --machine web01 --passphrase-file %s:\n%s", filepath.Base(pass), r)
		}
	}
	if r := elsewhere.azfs("points", "--machine", "web01", "--passphrase-file", mcWriteWrongPass(t, elsewhere)); r.code == 0 || !strings.Contains(r.stderr, "wrong passphrase for machine web01") {
		t.Errorf("a wrong passphrase:\n%s", r)
	}
	if r := elsewhere.azfs("forget", "--machine", "web01", "--dry-run", "latest"); r.code != 2 || !strings.Contains(r.stderr, "the owner passphrase of the vault at "+owner.vault+" is needed") {
		t.Errorf("forget without the owner passphrase: want exit 2 naming the owner's:\n%s", r)
	}
	// 'azfs machines' (issue 14): the owner's list of the vault's
	// machines, with their last points.
	var machines []struct {
		Name       string
		LivePoints *int                 `json:"live_points"`
		LastPoint  *struct{ ID string } `json:"last_point"`
		Keys       struct{ Escrow bool }
	}
	if err := json.Unmarshal([]byte(owner.mustAzfs("machines", "--json").stdout), &machines); err != nil {
		t.Fatal(err)
	}
	if len(machines) != 2 || machines[0].Name != testMachine || machines[1].Name != "web01" {
		t.Fatalf("machines: %+v, want %s and web01", machines, testMachine)
	}
	if m := machines[1]; m.LivePoints == nil || *m.LivePoints != 1 || m.LastPoint == nil || m.LastPoint.ID != point || !m.Keys.Escrow {
		t.Errorf("web01 in 'azfs machines': %+v", m)
	}
	if r := owner.mustAzfs("machines"); !strings.Contains(r.stdout, "web01") || !strings.Contains(r.stdout, "1 passphrase slot, escrow") {
		t.Errorf("azfs machines:\n%s", r)
	}
	if r := elsewhere.azfs("points", "--machine", "web02", "--passphrase-file", owner.passFile); r.code == 0 || !strings.Contains(r.stderr, "(the vault's machines: "+testMachine+", web01)") {
		t.Errorf("an unknown machine: want the error to name the vault's machines:\n%s", r)
	}
}

// jsonDoc runs azfs with args (which hold --json), checks that it exits 0
// and that its stdout parses as JSON with field in the document (or its
// first element; "" for an array that may be empty, which must not be
// null), and returns the document.
func jsonDoc(t *testing.T, e *env, field string, args ...string) any {
	t.Helper()
	name := strings.Join(args, " ")
	r := e.azfs(args...)
	if r.code != 0 {
		t.Errorf("want exit 0:\n%s", r)
		return nil
	}
	var doc any
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Errorf("%s: stdout does not parse as JSON: %v\n%s", name, err, r.stdout)
		return nil
	}
	first := doc
	if list, ok := doc.([]any); ok {
		switch {
		case list == nil:
			t.Errorf("%s: an empty list prints null", name)
			return doc
		case field == "":
			return doc
		case len(list) == 0:
			t.Errorf("%s: empty list", name)
			return doc
		}
		first = list[0]
	}
	if obj, ok := first.(map[string]any); !ok || obj[field] == nil {
		t.Errorf("%s: no field %q in\n%s", name, field, r.stdout)
	}
	return doc
}

// jsonCommands returns the commands of the built azfs whose help lists a
// --json flag ("policy set", ...), walking the command tree as its help
// shows it.
func jsonCommands(t *testing.T, e *env, path ...string) []string {
	t.Helper()
	r := e.mustAzfs(append(path, "--help")...)
	var out []string
	if strings.Contains(r.stdout, "--json") {
		out = append(out, strings.Join(path, " ")) // a group may run too: 'vault credentials'
	}
	_, subs, _ := strings.Cut(r.stdout, "Available Commands:\n")
	for _, line := range strings.Split(subs, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(line, "  ") {
			break
		}
		if fields[0] != "help" {
			out = append(out, jsonCommands(t, e, append(slices.Clone(path), fields[0])...)...)
		}
	}
	return out
}

// TestJSONOutputsParse: every command that prints data has --json (issue
// 14: 'key list' printed bare IDs; 'policy set', 'policy apply', 'vault
// pin', 'vault credentials' had none), and what each prints parses, with
// the documented fields (docs/cli.md). Every command of the built binary
// whose help lists --json is run here (TestEveryDataCommandHasJSON, in
// cmd/azfs, checks that every command printing data has it).
func TestJSONOutputsParse(t *testing.T) {
	e := newEnv(t)
	e.vault, e.passFile = filepath.Join(e.dir, "vault"), filepath.Join(e.dir, "passphrase")
	withJSON := jsonCommands(t, e)
	if len(withJSON) < 20 {
		t.Fatalf("commands with --json: %q, want every command that prints data", withJSON)
	}
	ran := map[string]bool{}
	// ranCommand notes the command args run: the longest of withJSON they
	// start with.
	ranCommand := func(args []string) {
		for n := len(args); n > 0; n-- {
			if name := strings.Join(args[:n], " "); slices.Contains(withJSON, name) {
				ran[name] = true
				return
			}
		}
	}
	doc := func(field string, args ...string) any {
		t.Helper()
		ranCommand(args)
		return jsonDoc(t, e, field, args...)
	}
	doc("vault_id", "vault", "create", e.vault, "--generate-passphrase", e.passFile, "--machine", testMachine, "--json")
	src := oneFileTree(e)
	first := e.backup(src)
	writeFile(t, filepath.Join(src, "b"), []byte("b"), 0o644)
	for _, tc := range []struct {
		args  []string
		field string // a field of the document, or of its first element
	}{
		{[]string{"backup", "--json", src}, "point"},
		{[]string{"points", "--json"}, "id"},
		{[]string{"points", "--deleted", "--json"}, ""},
		{[]string{"policy", "show", "--json"}, "machine"},
		{[]string{"policy", "set", "--keep-last", "1", "--dry-run", "--json"}, "forgets"},
		{[]string{"policy", "apply", "--dry-run", "--json"}, "forgotten"},
		{[]string{"status", "--json"}, "vault_id"},
		{[]string{"repair", "--json"}, "machines"},
		{[]string{"key", "list", "--json"}, "id"},
		{[]string{"check", "--json"}, "problems"},
		{[]string{"forget", "--dry-run", "--json", "latest"}, "id"},
		{[]string{"prune", "--dry-run", "--json"}, "bytes_stored"},
		{[]string{"machines", "--json"}, "name"},
		{[]string{"version", "--json"}, "version"},
		{[]string{"ls", "--json", "latest"}, "path"},
		{[]string{"find", "--json", "--all", "a"}, "point"},
		{[]string{"diff", "--json", first.Point, "latest"}, "changes"},
		{[]string{"stats", "--json"}, "dedup_ratio"},
		{[]string{"stats", "--all", "--json"}, "machines"},
		{[]string{"restore", "--json", "latest", "--target", filepath.Join(e.dir, "restored")}, "result"},
		{[]string{"vault", "credentials", "-o", filepath.Join(e.dir, "creds"), "--json"}, "expires"},
	} {
		doc(tc.field, tc.args...)
	}
	// The PIN, and a policy change that needs it: forgets the first point.
	var pin struct{ PIN string }
	if b, err := json.Marshal(doc("pin", "vault", "pin", "--json")); err == nil {
		json.Unmarshal(b, &pin)
	}
	var set struct {
		Saved     int
		Forgotten []struct{ ID string }
	}
	if b, err := json.Marshal(doc("new", "policy", "set", "--keep-last", "1", "--pin", pin.PIN, "--json")); err == nil {
		json.Unmarshal(b, &set)
	}
	if set.Saved != 1 || len(set.Forgotten) != 1 || set.Forgotten[0].ID != first.Point {
		t.Errorf("policy set --keep-last 1 --json: saved policy %d, forgot %+v; want policy 1, the first point %s", set.Saved, set.Forgotten, first.Point)
	}
	doc("id", "undelete", "--json", first.Point)
	doc("forgotten", "policy", "apply", "--json")
	// Another machine registers, then the owner revokes the credentials.
	m := newEnv(t)
	m.vault = e.vault
	ranCommand([]string{"register"})
	if r := jsonDoc(t, m, "action", "register", "--vault-credentials", filepath.Join(e.dir, "creds"), "--name", "web01", "--generate-passphrase", filepath.Join(m.dir, "pass"), "--json"); r != nil && r.(map[string]any)["action"] != "registered" {
		t.Errorf("register --json: %v, want action registered", r)
	}
	doc("revoked", "vault", "credentials", "revoke", "--json")

	for _, name := range withJSON {
		if !ran[name] {
			t.Errorf("azfs %s has --json, and this test does not run it", name)
		}
	}
}

// TestPlurals: "1 files" (issue 14) is "1 file".
func TestPlurals(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	r := e.mustAzfs("backup", oneFileTree(e))
	if !strings.Contains(r.stderr, " committed: 1 file (1 new, 0 changed, 0 unchanged), ") {
		t.Errorf("want '1 file' in the summary:\n%s", r)
	}
	if r := e.mustAzfs("check"); !strings.Contains(r.stderr, ", 1 point, ") || !strings.Contains(r.stderr, ", 0 problems") {
		t.Errorf("want '1 point' and '0 problems' in check's summary:\n%s", r)
	}
}

// TestReregisterReinstalledMachine: a reinstalled server could not take up
// its old name ('register --name web01' said it was registered) (issue
// 14). With its old passphrase, or the owner's, it does: it continues
// web01's points, and its first backup deduplicates against them.
func TestReregisterReinstalledMachine(t *testing.T) {
	owner := newEnv(t)
	owner.createVault()
	creds := mcCredentials(t, owner, "web01.creds")
	web, webPass := mcRegister(t, owner, creds, "web01")
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	writeRandom(t, filepath.Join(src, "data"), 8<<20, 21)
	first := web.backup(src)

	// The reinstalled server: the same data, no azfs state.
	again := newEnv(t)
	r := again.azfs("register", "--vault-credentials", creds, "--name", "web01")
	if r.code == 0 || !strings.Contains(r.stderr, "machine web01 is registered already: to take up its name, its passphrase (or the vault owner's) is needed") {
		t.Errorf("without a passphrase: want the error to say what proves the name:\n%s", r)
	}
	r = again.azfs("register", "--vault-credentials", creds, "--name", "web01", "--passphrase-file", mcWriteWrongPass(t, again))
	if r.code == 0 || !strings.Contains(r.stderr, "neither its nor the owner's") {
		t.Errorf("with a wrong passphrase: want a refusal:\n%s", r)
	}
	r = again.mustAzfs("register", "--vault-credentials", creds, "--name", "web01", "--passphrase-file", webPass)
	if !strings.Contains(r.stderr, "registered as web01 again") {
		t.Errorf("register with the old passphrase:\n%s", r)
	}
	second := again.backup(src)
	if second.Machine != "web01" || second.Stats.BytesRead < 8<<20 || second.Stats.BytesStored > 256<<10 {
		t.Errorf("first backup after reinstalling: machine %s, read %d, stored %d bytes; want web01, all 8 MiB read and deduplicated", second.Machine, second.Stats.BytesRead, second.Stats.BytesStored)
	}
	rows := again.points()
	if len(rows) != 2 || rows[0].ID != first.Point || rows[1].ID != second.Point {
		t.Errorf("web01's points after reinstalling: %+v, want %s then %s", rows, first.Point, second.Point)
	}
	// The owner's passphrase proves the name as well.
	third := newEnv(t)
	third.mustAzfs("register", "--vault-credentials", creds, "--name", "web01", "--passphrase-file", owner.passFile)
	if rows := third.points(); len(rows) != 2 {
		t.Errorf("web01's points, registered with the owner's passphrase: %+v", rows)
	}
}
