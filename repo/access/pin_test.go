package access

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/mem"
)

func issuePIN(t *testing.T, v testVault) string {
	t.Helper()
	pin, expires, err := IssuePIN(context.Background(), v.root, v.owner, t0)
	if err != nil {
		t.Fatalf("IssuePIN: %v", err)
	}
	if !regexp.MustCompile(`^[0-9]{4}-[0-9]{4}$`).MatchString(pin) {
		t.Fatalf("IssuePIN made %q, want 1234-5678", pin)
	}
	if !expires.Equal(t0.Add(PINValidity)) {
		t.Fatalf("PIN expires %v, want %v", expires, t0.Add(PINValidity))
	}
	return pin
}

// wrongPIN returns pin with its last digit changed.
func wrongPIN(pin string) string {
	last := pin[len(pin)-1]
	return pin[:len(pin)-1] + string('0'+(last-'0'+1)%10)
}

// wantPINError checks that err is ErrPIN and says what.
func wantPINError(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, ErrPIN) {
		t.Fatalf("UsePIN: %v, want ErrPIN", err)
	}
	if !strings.Contains(err.Error(), what) {
		t.Errorf("error %q does not say %q", err, what)
	}
}

func TestPINKDFDefault(t *testing.T) {
	want := keys.KDF{Algorithm: "argon2id", Time: 1, MemoryKiB: 64 << 10, Threads: 1}
	if defaultPINKDF != want {
		t.Errorf("PIN records are hashed with %+v, want %+v", defaultPINKDF, want)
	}
}

func TestPINDefaultCost(t *testing.T) {
	pinKDF = defaultPINKDF
	t.Cleanup(func() { pinKDF = cheapKDF })
	v := newTestVault(t)
	pin := issuePIN(t, v)
	if err := UsePIN(context.Background(), v.root, pin, t0); err != nil {
		t.Fatalf("UsePIN: %v", err)
	}
}

func TestPIN(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t)
	pin := issuePIN(t, v)
	if err := UsePIN(ctx, v.root, pin, t0.Add(PINValidity-time.Second)); err != nil {
		t.Fatalf("UsePIN: %v", err)
	}
	wantPINError(t, UsePIN(ctx, v.root, pin, t0.Add(time.Minute)), "already used")

	for _, form := range []func(string) string{
		func(p string) string { return strings.ReplaceAll(p, "-", "") },
		func(p string) string { return " " + p + "\n" },
	} {
		p := issuePIN(t, v)
		if err := UsePIN(ctx, v.root, form(p), t0); err != nil {
			t.Errorf("UsePIN(%q): %v", form(p), err)
		}
	}
}

func TestPINWrong(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t)
	pin := issuePIN(t, v)
	wantPINError(t, UsePIN(ctx, v.root, wrongPIN(pin), t0), "it is wrong")
	for _, bad := range []string{"", "1234-567", "1234--5678", "12-345678", "abcd-efgh", "123456789", "１２３４５６７８"} {
		wantPINError(t, UsePIN(ctx, v.root, bad, t0), "8 digits")
	}
	// Wrong guesses do not use up the PIN.
	if err := UsePIN(ctx, v.root, pin, t0); err != nil {
		t.Fatalf("UsePIN after wrong ones: %v", err)
	}
}

func TestPINExpired(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t)
	pin := issuePIN(t, v)
	used := issuePIN(t, v)
	if err := UsePIN(ctx, v.root, used, t0); err != nil {
		t.Fatal(err)
	}
	wantPINError(t, UsePIN(ctx, v.root, pin, t0.Add(PINValidity)), "expired at 2026-11-22 12:05:00 UTC")
	wantPINError(t, UsePIN(ctx, v.root, pin, t0.Add(6*time.Minute)), "expired")
	if n := countObjects(t, v.st, pinsPrefix); n != 3 {
		t.Errorf("%d objects under pins/ within the grace period, want 3 (2 records, 1 marker)", n)
	}
	// Long after, the records and the marker are gone and the PIN is just wrong.
	wantPINError(t, UsePIN(ctx, v.root, pin, t0.Add(2*time.Hour)), "it is wrong")
	if n := countObjects(t, v.st, pinsPrefix); n != 0 {
		t.Errorf("%d objects under pins/ left after expiry, want 0", n)
	}
}

// raceStore makes n UsePIN calls list the PIN records before any of them
// goes on, so that all of them find the PIN unused and race to consume it.
type raceStore struct {
	*mem.Store
	listed sync.WaitGroup
}

func (s *raceStore) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	err := s.Store.List(ctx, prefix, fn)
	s.listed.Done()
	s.listed.Wait()
	return err
}

func TestPINConcurrentUse(t *testing.T) {
	v := newTestVault(t)
	pin := issuePIN(t, v)
	const n = 10
	st := &raceStore{Store: v.st}
	st.listed.Add(n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = UsePIN(context.Background(), repo.Root{Storage: st, Config: v.root.Config}, pin, t0) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		wantPINError(t, err, "already used")
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent uses of one PIN succeeded, want 1", won, n)
	}
}

func TestPINOtherOwner(t *testing.T) {
	ctx := context.Background()
	v := newTestVault(t)
	fake, other := v.impostor(t)
	if _, _, err := IssuePIN(ctx, v.root, other, t0); !errors.Is(err, repo.ErrOwnerMismatch) {
		t.Fatalf("IssuePIN with other owner keys: %v, want ErrOwnerMismatch", err)
	}
	forged, _, err := IssuePIN(ctx, fake, other, t0)
	if err != nil {
		t.Fatal(err)
	}
	var forgedName string
	if err := v.st.List(ctx, pinsPrefix, func(fi storage.Info) error { forgedName = fi.Name; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := v.st.Save(ctx, pinsPrefix+strings.Repeat("0", idLen), []byte("not a record")); err != nil {
		t.Fatal(err)
	}
	real := issuePIN(t, v)
	if forged != real {
		wantPINError(t, UsePIN(ctx, v.root, forged, t0), "it is wrong")
	}
	if err := UsePIN(ctx, v.root, real, t0); err != nil {
		t.Fatalf("UsePIN beside forged and junk records: %v", err)
	}
	if _, err := v.st.Stat(ctx, forgedName+usedSuffix); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a PIN record signed by other keys was consumed (%v)", err)
	}
}
