// Package storagetest provides a conformance suite that every
// [storage.Storage] backend, and every wrapper around one, must pass.
//
// A backend's tests call [Run] with a constructor for empty stores:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Storage {
//			return mem.New()
//		})
//	}
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/azfs/azfs/repo/storage"
)

// Run runs the conformance suite as subtests of t. newStorage must return a
// new, empty store each time it is called; it may use t for cleanup.
func Run(t *testing.T, newStorage func(t *testing.T) storage.Storage) {
	t.Helper()
	RunWith(t, Options{}, newStorage)
}

// Options relax the suite for wrappers whose contract is documented to
// differ.
type Options struct {
	// IdenticalResaveMaySucceed accepts nil from a Save of the bytes
	// already stored under the name: a retrying wrapper whose earlier
	// attempt may have landed cannot tell that save from its own.
	IdenticalResaveMaySucceed bool
}

// RunWith is Run with the relaxations opts allows.
func RunWith(t *testing.T, opts Options, newStorage func(t *testing.T) storage.Storage) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Storage)
	}{
		{"RoundTrip", testRoundTrip},
		{"LoadRange", testLoadRange},
		{"CopiesData", testCopiesData},
		{"NeverOverwrite", func(t *testing.T, s storage.Storage) { testNeverOverwrite(t, s, opts) }},
		{"ConcurrentSave", testConcurrentSave},
		{"AtomicVisibility", testAtomicVisibility},
		{"NotFound", testNotFound},
		{"List", testList},
		{"ListEmpty", testListEmpty},
		{"ListStops", testListStops},
		{"DeleteThenSave", testDeleteThenSave},
		{"InvalidNames", testInvalidNames},
		{"Cancelled", testCancelled},
		{"Modified", testModified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStorage(t))
		})
	}
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	r := rand.NewChaCha8(s)
	_, _ = r.Read(b) // ChaCha8.Read never fails
	return b
}

func mustSave(t *testing.T, s storage.Storage, name string, data []byte) {
	t.Helper()
	if err := s.Save(context.Background(), name, data); err != nil {
		t.Fatalf("Save(%q, %d bytes): %v", name, len(data), err)
	}
}

func mustLoad(t *testing.T, s storage.Storage, name string, off, length int64) []byte {
	t.Helper()
	got, err := s.Load(context.Background(), name, off, length)
	if err != nil {
		t.Fatalf("Load(%q, %d, %d): %v", name, off, length, err)
	}
	return got
}

// checkContent asserts that name holds exactly want, via both Stat and Load.
func checkContent(t *testing.T, s storage.Storage, name string, want []byte) {
	t.Helper()
	info, err := s.Stat(context.Background(), name)
	if err != nil {
		t.Fatalf("Stat(%q): %v", name, err)
	}
	if info.Name != name || info.Size != int64(len(want)) {
		t.Errorf("Stat(%q) = %+v, want name %q size %d", name, info, name, len(want))
	}
	if got := mustLoad(t, s, name, 0, -1); !bytes.Equal(got, want) {
		t.Errorf("Load(%q, 0, -1) = %d bytes %s, want %d bytes %s", name, len(got), summary(got), len(want), summary(want))
	}
}

// summary shortens data for error messages.
func summary(b []byte) string {
	if len(b) > 16 {
		return fmt.Sprintf("%x…", b[:16])
	}
	return fmt.Sprintf("%x", b)
}

// checkErr asserts that err is a *storage.Error for op and name wrapping target.
func checkErr(t *testing.T, err error, op, name string, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s %q: got error %v, want one wrapping %q", op, name, err, target)
		return
	}
	var serr *storage.Error
	if !errors.As(err, &serr) {
		t.Errorf("%s %q: error %v (%T) is not a *storage.Error", op, name, err, err)
		return
	}
	if serr.Op != op || serr.Name != name {
		t.Errorf("%s %q: error has Op %q Name %q, want %q %q", op, name, serr.Op, serr.Name, op, name)
	}
}

func testRoundTrip(t *testing.T, s storage.Storage) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"config", nil},
		{"keys/0123abcd", []byte{0x42}},
		{"data/ab/ab0123456789", randomBytes(1, 5<<20)},
	} {
		mustSave(t, s, tc.name, tc.data)
		checkContent(t, s, tc.name, tc.data)
	}
}

func testLoadRange(t *testing.T, s storage.Storage) {
	const name = "data/00/range"
	data := randomBytes(2, 1000)
	mustSave(t, s, name, data)
	for _, tc := range []struct {
		off, length int64
		want        []byte // ignored when wantErr is set
		wantErr     error
	}{
		{off: 0, length: 10, want: data[:10]},
		{off: 0, length: 0, want: []byte{}},
		{off: 400, length: 200, want: data[400:600]},
		{off: 990, length: 10, want: data[990:]},
		{off: 995, length: 10, want: data[995:]}, // short tail
		{off: 0, length: -1, want: data},
		{off: 500, length: -1, want: data[500:]},
		{off: 1, length: math.MaxInt64, want: data[1:]}, // no overflow
		{off: 999, length: 1, want: data[999:]},
		{off: 1000, length: -1, want: []byte{}}, // off == size
		{off: 1000, length: 0, want: []byte{}},
		{off: 1000, length: 5, want: []byte{}},
		{off: 1001, length: 1, wantErr: storage.ErrRange},
		{off: 1001, length: -1, wantErr: storage.ErrRange},
		{off: math.MaxInt64, length: 1, wantErr: storage.ErrRange},
		{off: -1, length: 1, wantErr: storage.ErrRange},
	} {
		got, err := s.Load(context.Background(), name, tc.off, tc.length)
		if tc.wantErr != nil {
			if got != nil {
				t.Errorf("Load(%d, %d) returned %d bytes along with error %v", tc.off, tc.length, len(got), err)
			}
			checkErr(t, err, "load", name, tc.wantErr)
			continue
		}
		if err != nil {
			t.Errorf("Load(%d, %d): %v", tc.off, tc.length, err)
			continue
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("Load(%d, %d) = %d bytes %s, want %d bytes %s", tc.off, tc.length, len(got), summary(got), len(tc.want), summary(tc.want))
		}
	}
}

func testCopiesData(t *testing.T, s storage.Storage) {
	const name = "index/copies"
	data := []byte("original")
	mustSave(t, s, name, data)
	copy(data, "XXXXXXXX") // the caller may reuse its buffer after Save
	got := mustLoad(t, s, name, 0, -1)
	copy(got, "YYYYYYYY") // and owns what Load returns
	checkContent(t, s, name, []byte("original"))
}

func testNeverOverwrite(t *testing.T, s storage.Storage, opts Options) {
	const name = "points/once"
	first := []byte("first version")
	mustSave(t, s, name, first)
	for _, second := range [][]byte{[]byte("second, longer version"), nil, first} {
		err := s.Save(context.Background(), name, second)
		if err == nil && opts.IdenticalResaveMaySucceed && bytes.Equal(second, first) {
			continue
		}
		checkErr(t, err, "save", name, storage.ErrExists)
	}
	checkContent(t, s, name, first)
}

func testConcurrentSave(t *testing.T, s storage.Storage) {
	// Several rounds with sizable objects, to widen the race window.
	const rounds, writers = 4, 16
	for round := range rounds {
		name := fmt.Sprintf("data/cc/contended-%d", round)
		inputs := make([][]byte, writers)
		for i := range inputs {
			// Distinct content and size for every writer.
			inputs[i] = randomBytes(uint64(round*writers+i), 256<<10+i)
		}
		errs := make([]error, writers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				<-start
				errs[i] = s.Save(context.Background(), name, inputs[i])
			})
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("%s: writers %d and %d both succeeded", name, winner, i)
			case err == nil:
				winner = i
			default:
				checkErr(t, err, "save", name, storage.ErrExists)
			}
		}
		if winner < 0 {
			t.Fatalf("%s: no writer succeeded: %v", name, errs)
		}
		checkContent(t, s, name, inputs[winner])
	}
}

// testAtomicVisibility checks that a reader racing a Save sees either
// nothing or the whole object, never a prefix of it.
func testAtomicVisibility(t *testing.T, s storage.Storage) {
	const name = "data/at/atomic"
	data := randomBytes(3, 4<<20)
	saved := make(chan error, 1)
	go func() { saved <- s.Save(context.Background(), name, data) }()
	for done := false; !done; {
		select {
		case err := <-saved:
			if err != nil {
				t.Fatalf("Save: %v", err)
			}
			done = true
		default:
		}
		got, err := s.Load(context.Background(), name, 0, -1)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			if done {
				t.Fatalf("Load after Save returned: %v", err)
			}
		case err != nil:
			t.Fatalf("Load during Save: %v", err)
		case len(got) != len(data):
			t.Fatalf("Load during Save saw a partial object: %d of %d bytes", len(got), len(data))
		case !bytes.Equal(got, data):
			t.Fatalf("Load during Save saw %d bytes of wrong content", len(got))
		}
	}
}

func testNotFound(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustSave(t, s, "data/ab/present", []byte("x"))
	for _, name := range []string{"missing", "data/ab/missing", "data/zz/missing", "data/ab/present/below", "data/ab", "data"} {
		_, err := s.Stat(ctx, name)
		checkErr(t, err, "stat", name, storage.ErrNotFound)
		got, err := s.Load(ctx, name, 0, -1)
		checkErr(t, err, "load", name, storage.ErrNotFound)
		if got != nil {
			t.Errorf("Load(%q) returned %d bytes with error", name, len(got))
		}
		_, err = s.Load(ctx, name, 10, 1) // not ErrRange: the object is missing
		checkErr(t, err, "load", name, storage.ErrNotFound)
		checkErr(t, s.Delete(ctx, name), "delete", name, storage.ErrNotFound)
	}
	checkContent(t, s, "data/ab/present", []byte("x"))
}

// listNames returns the names listed under prefix, sorted, checking sizes
// against want and that no name is reported twice.
func listNames(t *testing.T, s storage.Storage, prefix string, sizes map[string]int64) []string {
	t.Helper()
	var names []string
	err := s.List(context.Background(), prefix, func(info storage.Info) error {
		if size, ok := sizes[info.Name]; !ok {
			t.Errorf("List(%q) reported unknown object %+v", prefix, info)
		} else if info.Size != size {
			t.Errorf("List(%q) reported %q with size %d, want %d", prefix, info.Name, info.Size, size)
		}
		names = append(names, info.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	slices.Sort(names)
	if dup := slices.Compact(slices.Clone(names)); len(dup) != len(names) {
		t.Errorf("List(%q) reported duplicates: %q", prefix, names)
	}
	return names
}

func testList(t *testing.T, s storage.Storage) {
	sizes := map[string]int64{
		"config":        3,
		"keys/k1":       5,
		"keys/k2":       0,
		"data/ab/x1":    7,
		"data/ab/x2":    11,
		"data/abc/z1":   13,
		"data/cd/y1":    17,
		"index/i1":      19,
		"points/p1":     23,
		"points/p1more": 29,
	}
	for name, size := range sizes {
		mustSave(t, s, name, randomBytes(uint64(size), int(size)))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"config", "data/ab/x1", "data/ab/x2", "data/abc/z1", "data/cd/y1", "index/i1", "keys/k1", "keys/k2", "points/p1", "points/p1more"}},
		{"data/", []string{"data/ab/x1", "data/ab/x2", "data/abc/z1", "data/cd/y1"}},
		{"data", []string{"data/ab/x1", "data/ab/x2", "data/abc/z1", "data/cd/y1"}},
		{"data/ab", []string{"data/ab/x1", "data/ab/x2", "data/abc/z1"}},
		{"data/ab/", []string{"data/ab/x1", "data/ab/x2"}},
		{"data/ab/x1", []string{"data/ab/x1"}},
		{"data/ab/x", []string{"data/ab/x1", "data/ab/x2"}},
		{"k", []string{"keys/k1", "keys/k2"}},
		{"c", []string{"config"}},
		{"config", []string{"config"}},
		{"points/p1", []string{"points/p1", "points/p1more"}},
		{"nothing/", nil},
		{"data/zz/", nil},
		{"data/ab/x1/", nil},
		{"config/", nil},
		{"zzz", nil},
	} {
		if got := listNames(t, s, tc.prefix, sizes); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	for _, prefix := range []string{"/", "/data", "data//", "../", "./data", "data/../", ".tmp-/", "data\x00/", `data\ab`} {
		err := s.List(context.Background(), prefix, func(info storage.Info) error {
			t.Errorf("List(%q) called fn with %+v", prefix, info)
			return nil
		})
		checkErr(t, err, "list", prefix, storage.ErrInvalidName)
	}
}

func testListEmpty(t *testing.T, s storage.Storage) {
	for _, prefix := range []string{"", "data/", "config"} {
		if got := listNames(t, s, prefix, nil); len(got) != 0 {
			t.Errorf("List(%q) on an empty store = %q", prefix, got)
		}
	}
}

func testListStops(t *testing.T, s storage.Storage) {
	for i := range 10 {
		mustSave(t, s, fmt.Sprintf("index/%02d", i), []byte{byte(i)})
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.List(context.Background(), "index/", func(storage.Info) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Errorf("List returned %v, want the callback's error unchanged", err)
	}
	if calls != 3 {
		t.Errorf("callback called %d times after returning an error on call 3", calls)
	}
}

func testDeleteThenSave(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const name = "data/de/object"
	mustSave(t, s, name, []byte("old"))
	mustSave(t, s, "data/de/other", []byte("kept"))
	if err := s.Delete(ctx, name); err != nil {
		t.Fatalf("Delete(%q): %v", name, err)
	}
	_, err := s.Stat(ctx, name)
	checkErr(t, err, "stat", name, storage.ErrNotFound)
	checkErr(t, s.Delete(ctx, name), "delete", name, storage.ErrNotFound)
	if got := listNames(t, s, "data/de/", map[string]int64{"data/de/other": 4}); !slices.Equal(got, []string{"data/de/other"}) {
		t.Errorf("List after Delete = %q", got)
	}
	mustSave(t, s, name, []byte("new content"))
	checkContent(t, s, name, []byte("new content"))
	checkContent(t, s, "data/de/other", []byte("kept"))

	// Deleting the last object under a prefix leaves the prefix usable.
	for _, n := range []string{name, "data/de/other"} {
		if err := s.Delete(ctx, n); err != nil {
			t.Fatalf("Delete(%q): %v", n, err)
		}
	}
	if got := listNames(t, s, "", nil); len(got) != 0 {
		t.Errorf("List after deleting everything = %q", got)
	}
	mustSave(t, s, name, []byte("again"))
	checkContent(t, s, name, []byte("again"))
}

func testInvalidNames(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for _, name := range []string{
		"", "/", "/config", "config/", "data//ab", "..", ".", "../config", "data/../config",
		"./config", "data/./ab", ".tmp-123", "data/ab/.tmp-x", ".hidden",
		"nul\x00byte", "new\nline", `back\slash`,
	} {
		checkErr(t, s.Save(ctx, name, []byte("x")), "save", name, storage.ErrInvalidName)
		_, err := s.Load(ctx, name, 0, -1)
		checkErr(t, err, "load", name, storage.ErrInvalidName)
		_, err = s.Stat(ctx, name)
		checkErr(t, err, "stat", name, storage.ErrInvalidName)
		checkErr(t, s.Delete(ctx, name), "delete", name, storage.ErrInvalidName)
	}
	if got := listNames(t, s, "", nil); len(got) != 0 {
		t.Errorf("invalid Saves created objects: %q", got)
	}
	// Ordinary vault names are accepted.
	for _, name := range []string{"config", "keys/0f1e", "data/ab/ab12", "index/a-b_c.d", "a/b/c/d/e"} {
		mustSave(t, s, name, []byte(name))
		checkContent(t, s, name, []byte(name))
	}
}

func testCancelled(t *testing.T, s storage.Storage) {
	const name = "data/ca/present"
	mustSave(t, s, name, []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	checkErr(t, s.Save(ctx, "data/ca/new", []byte("y")), "save", "data/ca/new", context.Canceled)
	_, err := s.Load(ctx, name, 0, -1)
	checkErr(t, err, "load", name, context.Canceled)
	_, err = s.Stat(ctx, name)
	checkErr(t, err, "stat", name, context.Canceled)
	err = s.List(ctx, "", func(info storage.Info) error {
		t.Errorf("List with a cancelled context called fn with %+v", info)
		return nil
	})
	checkErr(t, err, "list", "", context.Canceled)
	checkErr(t, s.Delete(ctx, name), "delete", name, context.Canceled)

	// Nothing happened.
	_, err = s.Stat(context.Background(), "data/ca/new")
	checkErr(t, err, "stat", "data/ca/new", storage.ErrNotFound)
	checkContent(t, s, name, []byte("x"))
}

// testModified: a backend that reports when an object was saved reports a
// time near the save, the same through Stat and List (what soft-delete
// windows count from); one that does not reports zero.
func testModified(t *testing.T, s storage.Storage) {
	const name = "points/modified"
	before := time.Now()
	mustSave(t, s, name, []byte("x"))
	after := time.Now()
	fi, err := s.Stat(context.Background(), name)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if m := fi.Modified; !m.IsZero() && (m.Before(before.Add(-5*time.Minute)) || m.After(after.Add(5*time.Minute))) {
		t.Errorf("Stat: Modified = %s, want zero or near %s (5 minutes of clock skew allowed)", m, before)
	}
	var listed []storage.Info
	err = s.List(context.Background(), "points/", func(fi storage.Info) error {
		listed = append(listed, fi)
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(listed) != 1 || !listed[0].Modified.Equal(fi.Modified) {
		t.Errorf("List reported %+v, Stat %+v: want the same Modified", listed, fi)
	}
}
