package freelist_test

import (
	"runtime"
	"testing"

	"github.com/azfs/azfs/internal/freelist"
)

// TestBound: a List holds at most its capacity, hands back what it holds
// before making fresh values, and keeps them across garbage collections.
func TestBound(t *testing.T) {
	made := 0
	l := freelist.New(2, func() *[]byte { made++; b := make([]byte, 0, 1<<20); return &b })
	a, b, c := l.Get(), l.Get(), l.Get()
	if made != 3 {
		t.Fatalf("made %d values for three Gets from an empty list, want 3", made)
	}
	l.Put(a)
	l.Put(b)
	l.Put(c) // beyond the capacity: dropped
	if l.Len() != 2 {
		t.Fatalf("Len = %d after three Puts into a list of capacity 2, want 2", l.Len())
	}
	runtime.GC()
	runtime.GC()
	for range 2 {
		if v := l.Get(); v != a && v != b {
			t.Fatalf("Get returned a value that was not put back")
		}
	}
	if made != 3 {
		t.Fatalf("made %d values, want 3: the list lost what it held", made)
	}
	if l.Get(); made != 4 {
		t.Fatalf("made %d values after emptying the list, want 4", made)
	}
}

// TestConcurrent exercises Get and Put from several goroutines (for the race
// detector) and checks the bound holds throughout.
func TestConcurrent(t *testing.T) {
	l := freelist.New(4, func() []byte { return make([]byte, 16) })
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 1000 {
				v := l.Get()
				v[0]++
				l.Put(v)
				if n := l.Len(); n > 4 {
					t.Errorf("Len = %d, capacity 4", n)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

// TestClear: Clear drops what the list holds; the list stays usable.
func TestClear(t *testing.T) {
	made := 0
	l := freelist.New(4, func() *[]byte { made++; return new([]byte) })
	l.Put(l.Get())
	l.Put(new([]byte))
	if l.Len() != 2 {
		t.Fatalf("Len = %d, want 2", l.Len())
	}
	l.Clear()
	if l.Len() != 0 {
		t.Fatalf("Len after Clear = %d, want 0", l.Len())
	}
	l.Get()
	if made != 2 {
		t.Errorf("%d values made, want 2: the list is empty after Clear", made)
	}
}
