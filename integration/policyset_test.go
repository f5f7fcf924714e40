package integration

// Changing some retention rules keeps the others (issue 13, item 3).

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPolicySetKeepsOtherRules: the README's example, which gives daily,
// weekly and monthly rules, keeps the default's yearly rule and so needs
// no PIN; --keep-yearly 0 drops the rule explicitly, which needs one, and
// the refusal says which rule it lowers and lists what it would forget.
func TestPolicySetKeepsOtherRules(t *testing.T) {
	e := newEnv(t)
	e.createVault()
	src := mkdir(t, filepath.Join(t.TempDir(), "src"))
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o644)
	all := e.backupVersions(src, "n", 3)

	r := e.mustAzfs("policy", "set", "--keep-daily", "30", "--keep-weekly", "12", "--keep-monthly", "24")
	if strings.Contains(r.stdout, "listed below") {
		t.Errorf("a change that forgets nothing says points are listed below:\n%s", r)
	}
	p := e.policy()
	if got := p.Retention; got.KeepDaily != 30 || got.KeepWeekly != 12 || got.KeepMonthly != 24 || got.KeepYearly != 3 {
		t.Errorf("after the README's example the retention is %+v, want daily 30, weekly 12, monthly 24 and the default's yearly 3", got)
	}

	// Dropping a rule explicitly lowers it: refused without a PIN, saying
	// which rule, though no point is forgotten today.
	r = e.azfs("policy", "set", "--keep-yearly", "0")
	mcRefused(t, r, "PIN", "yearly 3 to 0")
	if strings.Contains(r.stdout, "listed below") {
		t.Errorf("a refusal that forgets no point today says points are listed below:\n%s", r)
	}
	if p := e.policy(); p.Retention.KeepYearly != 3 {
		t.Errorf("a refused change changed the policy: %+v", p)
	}

	// A refusal that forgets points lists them. (Keeping the last 5 brings
	// back the points of the day that the daily rule forgot.)
	e.mustAzfs("policy", "set", "--keep-last", "5")
	more := e.backupVersions(src, "m", 2)
	r = e.azfs("policy", "set", "--keep-last", "1")
	mcRefused(t, r, "PIN", "last 5 to 1")
	if got, want := forgetLines(r, "forget"), shortIDs(append(all, more[0])); !slices.Equal(got, want) {
		t.Errorf("the refusal lists %v, want %v:\n%s", got, want, r)
	}
	e.mustAzfs("policy", "set", "--keep-yearly", "0", "--pin", e.pin())
	if p := e.policy(); p.Retention.KeepYearly != 0 || p.Retention.KeepDaily != 30 {
		t.Errorf("after --keep-yearly 0: %+v, want yearly dropped and daily 30 kept", p.Retention)
	}
}
