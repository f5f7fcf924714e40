package pack_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/repo/pack"
)

// executableChunk returns n bytes of the test binary: machine code, which
// compresses about as the bench corpus's big.bin does.
func executableChunk(t testing.TB, n int) []byte {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < n {
		t.Fatalf("test binary of %d bytes, want %d", len(b), n)
	}
	return b[len(b)-n:]
}

// TestDecodePayloadStepsHandsOutPrefixes: a 1 MiB compressed payload is
// decoded into the caller's buffer by steps, each reported as a longer
// prefix of the result in that buffer (with cgo: C zstd's buffer-less
// decoder), and the result is the plaintext; a raw payload is decoded with
// no step. Before DecodePayloadSteps a reader waited for the whole chunk.
func TestDecodePayloadStepsHandsOutPrefixes(t *testing.T) {
	plain := executableChunk(t, 1<<20)
	for _, z := range pack.PayloadCodecs {
		payload := z.EncodePayload(nil, plain, pack.CompressFast)
		if payload[0] != 1 {
			t.Fatalf("%s: test chunk stored raw", z.Name)
		}
		dst := make([]byte, 3, 3+len(plain))
		copy(dst, "abc")
		var prefixes []int
		got, err := z.DecodePayloadSteps(dst, payload, len(plain), func(prefix []byte) {
			if unsafe.SliceData(prefix) != unsafe.SliceData(dst) {
				t.Errorf("%s: prefix outside dst's room", z.Name)
			}
			if !bytes.Equal(prefix[3:], plain[:len(prefix)-3]) {
				t.Errorf("%s: prefix of %d bytes is not the plaintext's", z.Name, len(prefix))
			}
			prefixes = append(prefixes, len(prefix))
		})
		if err != nil || !bytes.Equal(got[:3], []byte("abc")) || !bytes.Equal(got[3:], plain) {
			t.Fatalf("%s: DecodePayloadSteps = %d bytes, %v; want dst and the plaintext", z.Name, len(got), err)
		}
		for i := 1; i < len(prefixes); i++ {
			if prefixes[i] <= prefixes[i-1] {
				t.Errorf("%s: prefixes %v do not grow", z.Name, prefixes)
			}
		}
		if z.Name == "c" && (len(prefixes) < len(plain)/pack.DecodeStep/2 || prefixes[0] > 3+256<<10) {
			t.Errorf("%s: prefixes %v for 1 MiB: want one about every %d bytes", z.Name, prefixes, pack.DecodeStep)
		}
		raw := append([]byte{0}, plain[:1000]...) // encoding 0: raw
		if got, err := z.DecodePayloadSteps(nil, raw, len(plain), func([]byte) { t.Errorf("%s: raw payload decoded by steps", z.Name) }); err != nil || !bytes.Equal(got, plain[:1000]) {
			t.Errorf("%s: raw payload: %d bytes, %v", z.Name, len(got), err)
		}
	}
}

// TestDecodePayloadStepsRejects: a truncated frame, bytes after the frame,
// and a frame beyond maxLen fail with ErrFormat (after the prefixes that
// did decode: the caller authenticated the payload).
func TestDecodePayloadStepsRejects(t *testing.T) {
	plain := executableChunk(t, 1<<20)
	for _, z := range pack.PayloadCodecs {
		payload := z.EncodePayload(nil, plain, pack.CompressFast)
		for name, bad := range map[string][]byte{
			"truncated":   payload[:len(payload)-100],
			"bytes after": append(bytes.Clone(payload), 1, 2, 3),
		} {
			if got, err := z.DecodePayloadSteps(nil, bad, len(plain), func([]byte) {}); !errors.Is(err, pack.ErrFormat) || got != nil {
				t.Errorf("%s: %s: %d bytes, %v; want ErrFormat", z.Name, name, len(got), err)
			}
		}
		if _, err := z.DecodePayloadSteps(nil, payload, len(plain)-1, func([]byte) {}); !errors.Is(err, pack.ErrFormat) {
			t.Errorf("%s: beyond maxLen: %v; want ErrFormat", z.Name, err)
		}
	}
}

// BenchmarkDecodeChunk is what a read of 4 KiB at a random offset of a
// 1 MiB compressed chunk (machine code, as the bench corpus's big.bin)
// waits for, in CPU time of the decoding thread (which the load of other
// processes changes little): the whole chunk decoded (DecodePayload,
// "whole"), or the steps up to the read's range (DecodePayloadSteps,
// "steps": cpu-µs-to-4KiB), and the whole decode by steps (cpu-µs/op).
// docs/performance.md §3.9.
func BenchmarkDecodeChunk(b *testing.B) {
	plain := executableChunk(b, 1<<20)
	payload := pack.EncodePayload(nil, plain, pack.CompressFast)
	dst := make([]byte, 0, len(plain))
	b.Run("whole", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b.SetBytes(int64(len(plain)))
		var cpu time.Duration
		for b.Loop() {
			start := threadCPU(b)
			if _, err := pack.DecodePayload(dst[:0], payload, len(plain)); err != nil {
				b.Fatal(err)
			}
			cpu += threadCPU(b) - start
		}
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	})
	b.Run("steps", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b.SetBytes(int64(len(plain)))
		rng := rand.New(rand.NewPCG(1, 2))
		var toRead, cpu time.Duration
		for b.Loop() {
			end := 4096 + rng.IntN(len(plain)-4096)
			start := threadCPU(b)
			done := false
			if _, err := pack.DecodePayloadSteps(dst[:0], payload, len(plain), func(prefix []byte) {
				if !done && len(prefix) >= end {
					toRead += threadCPU(b) - start
					done = true
				}
			}); err != nil {
				b.Fatal(err)
			}
			now := threadCPU(b)
			if !done {
				toRead += now - start
			}
			cpu += now - start
		}
		b.ReportMetric(float64(toRead.Microseconds())/float64(b.N), "cpu-µs-to-4KiB")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	})
}

// threadCPU returns the CPU time of the calling thread.
func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
