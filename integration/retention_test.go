package integration

// Retention policies, forgetting and soft delete (issue 5), end to end:
// the owner's policy, the PIN that gates shortening it and forgetting
// points, 'azfs points --deleted', 'azfs undelete', and the mount, which
// serves live points only.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// deletedRow is one element of `azfs points --deleted --json`.
type deletedRow struct {
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	Forgotten    time.Time `json:"forgotten"`
	By           string    `json:"by"`
	Purgeable    time.Time `json:"purgeable"`
	PurgeableNow bool      `json:"purgeable_now"`
}

// deleted lists the env's forgotten points.
func (e *env) deleted(args ...string) []deletedRow {
	e.t.Helper()
	r := e.mustAzfs(append([]string{"points", "--deleted", "--json"}, args...)...)
	var rows []deletedRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		e.t.Fatalf("points --deleted --json printed invalid JSON: %v\n%s", err, r)
	}
	return rows
}

// liveIDs returns the IDs of the env's points, oldest first.
func liveIDs(e *env, args ...string) []string {
	e.t.Helper()
	r := e.mustAzfs(append([]string{"points", "--json"}, args...)...)
	var rows []pointRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		e.t.Fatalf("points --json printed invalid JSON: %v\n%s", err, r)
	}
	var out []string
	for _, p := range rows {
		out = append(out, p.ID)
	}
	return out
}

func deletedIDs(rows []deletedRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

// policyShown is `azfs policy show --json`.
type policyShown struct {
	Machine   string `json:"machine"`
	Policy    int    `json:"policy"`
	Default   bool   `json:"default"`
	TimeZone  string `json:"timezone"`
	Retention struct {
		KeepLast    int `json:"keep_last"`
		KeepDaily   int `json:"keep_daily"`
		KeepWeekly  int `json:"keep_weekly"`
		KeepMonthly int `json:"keep_monthly"`
		KeepYearly  int `json:"keep_yearly"`
	} `json:"retention"`
	SoftDeleteSeconds int64 `json:"soft_delete_seconds"`
}

func (e *env) policy(args ...string) policyShown {
	e.t.Helper()
	r := e.mustAzfs(append([]string{"policy", "show", "--json"}, args...)...)
	var p policyShown
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		e.t.Fatalf("policy show --json printed invalid JSON: %v\n%s", err, r)
	}
	return p
}

// keepOnlyLast is 'azfs policy set' keeping the last n points and dropping
// the default policy's other rules.
func keepOnlyLast(n int) []string {
	return []string{"policy", "set", "--keep-last", strconv.Itoa(n), "--keep-daily", "0", "--keep-weekly", "0", "--keep-monthly", "0", "--keep-yearly", "0"}
}

// pin has the owner issue a security PIN.
func (e *env) pin() string {
	e.t.Helper()
	pin := strings.TrimSpace(e.mustAzfs("vault", "pin").stdout)
	if !pinRe.MatchString(pin) {
		e.t.Fatalf("vault pin printed %q", pin)
	}
	return pin
}

// forgetLines returns the point IDs (short) of the "forget ..." lines a
// command printed.
func forgetLines(r result, verb string) []string {
	var out []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == verb {
			out = append(out, f[1])
		}
	}
	return out
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:8]
	}
	return out
}

// mountedPoints mounts every point of the env's machine and returns the
// names in its machine directory (point directories and latest), then
// unmounts.
func mountedPoints(t *testing.T, e *env) []string {
	t.Helper()
	m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "all")))
	defer func() {
		if code, err := m.stop(os.Interrupt); err != nil || code != 0 {
			t.Errorf("azmount exit %d, %v", code, err)
		}
	}()
	names := mcNames(t, filepath.Join(m.dir, testMachine))
	slices.Sort(names)
	return names
}

// pointDirs returns the directory names the all-points mount gives points
// (their times in UTC), for the rows' IDs, with latest.
func pointDirs(t *testing.T, e *env, ids []string) []string {
	t.Helper()
	r := e.mustAzfs("points", "--json")
	var rows []pointRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range rows {
		if slices.Contains(ids, p.ID) {
			out = append(out, p.Time.UTC().Format("2006-01-02T15-04-05Z"))
		}
	}
	if len(out) > 0 {
		out = append(out, "latest")
	}
	slices.Sort(out)
	return out
}

// TestRetentionPolicy: the owner's retention policy, with the PIN that a
// shortening needs; what it forgets stays listed as deleted, undelete
// brings a point back, and the mount serves exactly the live points.
func TestRetentionPolicy(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o644)
	all := e.backupVersions(src, "n", 5)

	// The default policy until the owner sets one.
	if p := e.policy(); !p.Default || p.Machine != testMachine || p.Retention.KeepDaily != 14 || p.SoftDeleteSeconds != 14*86400 {
		t.Errorf("policy show: %+v, want the default", p)
	}

	// A dry run shows what a shorter retention forgets and changes nothing.
	// (The default policy keeps the last point of the day; these five are
	// of one day, so the new one forgets none that it keeps.)
	r := e.mustAzfs(append(keepOnlyLast(2), "--timezone", "Europe/Berlin", "--dry-run")...)
	if !strings.Contains(r.stdout, "forgets 3 now") {
		t.Errorf("dry run does not say the new policy forgets 3 points:\n%s", r)
	}
	if !strings.Contains(r.stderr, "needs a security PIN") {
		t.Errorf("dry run of a shortening does not say it needs a PIN:\n%s", r)
	}
	// Without a PIN, with a wrong one: refused, nothing changed.
	mcRefused(t, e.azfs(append(keepOnlyLast(2), "--timezone", "Europe/Berlin")...), "PIN")
	pin := e.pin()
	wrong := pin[:len(pin)-1] + string('0'+(pin[len(pin)-1]-'0'+1)%10)
	mcRefused(t, e.azfs(append(keepOnlyLast(2), "--timezone", "Europe/Berlin", "--pin", wrong)...), "PIN", "wrong")
	if p := e.policy(); !p.Default {
		t.Errorf("a refused change changed the policy: %+v", p)
	}
	if got := liveIDs(e); !slices.Equal(got, all) {
		t.Fatalf("a refused change forgot points: %v", got)
	}
	// With the PIN: the policy is saved and applied at once.
	r = e.mustAzfs(append(keepOnlyLast(2), "--timezone", "Europe/Berlin", "--pin", pin)...)
	if got := forgetLines(r, "forgot"); !slices.Equal(got, shortIDs(all[:3])) {
		t.Errorf("policy set forgot %v, want %v\n%s", got, shortIDs(all[:3]), r)
	}
	if p := e.policy(); p.Default || p.Policy != 1 || p.Retention.KeepLast != 2 || p.TimeZone != "Europe/Berlin" {
		t.Errorf("policy after set: %+v", p)
	}
	if got := liveIDs(e); !slices.Equal(got, all[3:]) {
		t.Errorf("live points %v, want %v", got, all[3:])
	}
	del := e.deleted()
	if got := deletedIDs(del); !slices.Equal(got, all[:3]) {
		t.Errorf("deleted points %v, want %v", got, all[:3])
	}
	for _, d := range del {
		if d.By != "policy 1" || d.PurgeableNow || d.Purgeable.Sub(d.Forgotten) != 14*24*time.Hour {
			t.Errorf("deleted point %+v: want by policy 1, purgeable 14 days after it was forgotten", d)
		}
	}
	// The PIN works once.
	mcRefused(t, e.azfs("policy", "set", "--keep-last", "1", "--pin", pin), "used")
	// A longer retention needs no PIN (one given is not used), and brings
	// back what the shorter one forgot.
	unused := e.pin()
	r = e.mustAzfs("policy", "set", "--keep-last", "3", "--pin", unused)
	if !slices.Contains(r.stderrLines(), "the change forgets no point the current policy keeps and shortens no window: no PIN needed, and the PIN was not used") {
		t.Errorf("a lengthening with a PIN does not say it left the PIN alone, on a line of its own without the error prefix (issue 14):\n%s", r)
	}
	if got := liveIDs(e); !slices.Equal(got, all[2:]) {
		t.Errorf("after lengthening, live points %v, want %v", got, all[2:])
	}
	// A shorter soft-delete window needs a PIN: the one left unused.
	mcRefused(t, e.azfs("policy", "set", "--soft-delete", "7d"), "PIN")
	e.mustAzfs("policy", "set", "--soft-delete", "7d", "--pin", unused)
	if p := e.policy(); p.SoftDeleteSeconds != 7*86400 || p.Retention.KeepLast != 3 {
		t.Errorf("after --soft-delete 7d: %+v", p)
	}
	e.mustAzfs("policy", "set", "--soft-delete", "30d")
	if got := mountedPoints(t, e); !slices.Equal(got, pointDirs(t, e, all[2:])) {
		t.Errorf("the mount shows %v, want %v", got, pointDirs(t, e, all[2:]))
	}

	// Whoever reads the points applies the policy; with nothing to forget,
	// it forgets nothing.
	r = e.mustAzfs("policy", "apply")
	if len(forgetLines(r, "forgot")) != 0 {
		t.Errorf("policy apply forgot points the policy keeps:\n%s", r)
	}
	// A new point pushes the oldest live one out at the next application.
	writeFile(t, filepath.Join(src, "n"), []byte("new"), 0o644)
	all = append(all, e.backup(src).Point)
	r = e.mustAzfs("policy", "apply", "--dry-run")
	if got := forgetLines(r, "forget"); !slices.Equal(got, shortIDs(all[2:3])) {
		t.Errorf("apply --dry-run: %v, want %v", got, shortIDs(all[2:3]))
	}
	e.mustAzfs("policy", "apply")
	if got := liveIDs(e); !slices.Equal(got, all[3:]) {
		t.Errorf("after apply, live points %v, want %v", got, all[3:])
	}
}

// TestForgetUndelete: the owner forgets points with a PIN (missing, wrong
// and used PINs are refused and change nothing), the mount stops serving
// them, and undelete brings one back, into the mount too.
func TestForgetUndelete(t *testing.T) {
	requireFUSE(t)
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	all := e.backupVersions(src, "f", 3)
	// Keep everything, so that only the owner forgets here.
	e.mustAzfs("policy", "set", "--keep-all")

	// A dry run lists, needs no PIN, changes nothing.
	r := e.mustAzfs("forget", all[1][:10], "--dry-run")
	if got := forgetLines(r, "forget"); !slices.Equal(got, shortIDs(all[1:2])) {
		t.Errorf("forget --dry-run listed %v", got)
	}
	mcRefused(t, e.azfs("forget", all[1][:10]), "PIN")
	mcRefused(t, e.azfs("forget", all[1][:10], "--pin", "0000-0000"), "PIN")
	mcRefused(t, e.azfs("forget", "ffffffffff", "--pin", "0000-0000"), "no such recovery point")
	if got := liveIDs(e); !slices.Equal(got, all) {
		t.Fatalf("refused forgets changed the points: %v", got)
	}
	pin := e.pin()
	// A selector that matches nothing is refused before the PIN is spent.
	mcRefused(t, e.azfs("forget", all[1][:10], "ffffffffff", "--pin", pin), "no such recovery point")
	e.mustAzfs("forget", all[1][:10], "latest", "--pin", pin)
	if got := liveIDs(e); !slices.Equal(got, all[:1]) {
		t.Errorf("after forget, live points %v, want %v", got, all[:1])
	}
	del := e.deleted()
	if got := deletedIDs(del); !slices.Equal(got, all[1:]) {
		t.Errorf("deleted %v, want %v", got, all[1:])
	}
	for _, d := range del {
		if d.By != "owner" {
			t.Errorf("deleted point %s: by %q, want owner", d.ID[:8], d.By)
		}
	}
	mcRefused(t, e.azfs("forget", all[0][:10], "--pin", pin), "used")
	mcRefused(t, e.azfs("forget", all[1][:10], "--dry-run"), "forgotten already")

	// The mount serves the live point only, and refuses a forgotten one.
	if got := mountedPoints(t, e); !slices.Equal(got, pointDirs(t, e, all[:1])) {
		t.Errorf("the mount shows %v, want %v", got, pointDirs(t, e, all[:1]))
	}
	stderr := mcMountRefused(t, e, "--point", all[2][:12])
	if !strings.Contains(stderr, "forgotten") || !strings.Contains(stderr, "undelete") {
		t.Errorf("mounting a forgotten point: %s", stderr)
	}

	// Undelete needs no PIN; the point is live and mounted again.
	mcRefused(t, e.azfs("undelete", all[0][:10]), "not forgotten")
	r = e.mustAzfs("undelete", all[2][:10])
	if got := forgetLines(r, "undeleted"); !slices.Equal(got, shortIDs(all[2:3])) {
		t.Errorf("undelete printed %v", got)
	}
	if got := liveIDs(e); !slices.Equal(got, []string{all[0], all[2]}) {
		t.Errorf("after undelete, live points %v", got)
	}
	if got := deletedIDs(e.deleted()); !slices.Equal(got, all[1:2]) {
		t.Errorf("after undelete, deleted %v", got)
	}
	want := pointDirs(t, e, []string{all[0], all[2]})
	if got := mountedPoints(t, e); !slices.Equal(got, want) {
		t.Errorf("after undelete the mount shows %v, want %v", got, want)
	}
	m := e.mount(mkdir(t, filepath.Join(t.TempDir(), "one")), "--point", all[2][:12])
	if b, err := os.ReadFile(filepath.Join(m.dir, src, "f")); err != nil || string(b) != "\x02" {
		t.Errorf("the undeleted point's file: %q, %v", b, err)
	}
}

// TestOwnerCommandsRefusedToMachines: a registered machine holds no owner
// keys: it cannot set policies, forget or undelete; it reads its policy
// and applies it.
func TestOwnerCommandsRefusedToMachines(t *testing.T) {
	owner := newEnv(t)
	owner.createVault()
	creds := mcCredentials(t, owner, "web01.azcreds")
	web, pass := mcRegister(t, owner, creds, "web01")
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	var all []string
	for i := range 3 {
		writeFile(t, filepath.Join(src, "f"), []byte{byte(i)}, 0o644)
		all = append(all, web.backup(src).Point)
	}
	// The owner shortens web01's retention; web01 cannot.
	mcRefused(t, web.azfs("policy", "set", "--keep-last", "1", "--passphrase-file", pass), "owner passphrase")
	pin := owner.pin()
	r := owner.mustAzfs(append(keepOnlyLast(2), "--machine", "web01", "--pin", pin)...)
	if got := forgetLines(r, "forgot"); !slices.Equal(got, shortIDs(all[:1])) {
		t.Errorf("the owner's policy set forgot %v of web01 (through its escrow), want %v", got, shortIDs(all[:1]))
	}
	if p := web.policy(); p.Policy != 1 || p.Retention.KeepLast != 2 {
		t.Errorf("web01 sees the policy %+v", p)
	}
	if got := liveIDs(web); !slices.Equal(got, all[1:]) {
		t.Errorf("web01's live points %v, want %v", got, all[1:])
	}
	mcRefused(t, web.azfs("forget", "latest", "--pin", owner.pin(), "--passphrase-file", pass), "owner passphrase")
	mcRefused(t, web.azfs("undelete", all[0][:10], "--passphrase-file", pass), "owner passphrase")
	// The owner lists and brings back web01's points without its
	// passphrase.
	if got := deletedIDs(owner.deleted("--machine", "web01", "--passphrase-file", pass)); !slices.Equal(got, all[:1]) {
		t.Errorf("the owner sees web01's deleted points %v", got)
	}
	owner.mustAzfs("undelete", "--machine", "web01", all[0][:10])
	writeFile(t, filepath.Join(src, "f"), []byte("new"), 0o644)
	all = append(all, web.backup(src).Point)
	// web01 applies its policy: the undeleted point stays.
	r = web.mustAzfs("policy", "apply")
	if got := forgetLines(r, "forgot"); !slices.Equal(got, shortIDs(all[1:2])) {
		t.Errorf("web01's policy apply forgot %v, want %v\n%s", got, shortIDs(all[1:2]), r)
	}
	if got := liveIDs(web); !slices.Equal(got, []string{all[0], all[2], all[3]}) {
		t.Errorf("web01's live points %v", got)
	}
}

// TestBlobRetentionWithBackupSAS: a machine whose storage access is a
// create-only SAS applies its owner's retention policy: forgetting only
// creates an object.
func TestBlobRetentionWithBackupSAS(t *testing.T) {
	endpoint := startAzurite(t)
	owner := sasVault(t, endpoint, "retention")
	creds := mcCredentials(t, owner, "web01.azcreds")
	web := newEnv(t)
	web.mustAzfs("register", "--vault-credentials", creds, "--name", "web01", "--generate-passphrase", filepath.Join(web.dir, "pass"))
	pin := owner.pin()
	owner.mustAzfs(append(keepOnlyLast(1), "--machine", "web01", "--pin", pin)...)
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	var all []string
	for i := range 3 {
		writeFile(t, filepath.Join(src, "f"), []byte{byte(i)}, 0o644)
		all = append(all, web.backup(src).Point)
	}
	r := web.mustAzfs("policy", "apply")
	if got := forgetLines(r, "forgot"); !slices.Equal(got, shortIDs(all[:2])) {
		t.Errorf("web01 forgot %v with its backup SAS, want %v\n%s", got, shortIDs(all[:2]), r)
	}
	if got := liveIDs(web); !slices.Equal(got, all[2:]) {
		t.Errorf("live %v, want %v", got, all[2:])
	}
	if got := deletedIDs(web.deleted()); !slices.Equal(got, all[:2]) {
		t.Errorf("deleted %v, want %v", got, all[:2])
	}
}
