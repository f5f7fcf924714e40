package chunker

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/zeebo/blake3"
)

var (
	testSeed  = [32]byte{1, 2, 3, 4, 5, 6, 7, 8}
	otherSeed = [32]byte{8, 7, 6, 5, 4, 3, 2, 1}

	// smallParams produce many chunks from little data, so that properties
	// are checked over thousands of boundaries in a fast test.
	smallParams = Params{Min: 512, Avg: 2048, Max: 8192}
)

// randomData returns n deterministic pseudo-random bytes for seed.
func randomData(n int, seed uint64) []byte {
	var key [32]byte
	key[0] = byte(seed)
	key[1] = byte(seed >> 8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // ChaCha8.Read never fails
	return b
}

// data64M is a 64 MiB random input shared by the large tests.
var data64M = sync.OnceValue(func() []byte { return randomData(64<<20, 64) })

// chunkAll chunks r to the end and returns copies of the chunks.
func chunkAll(t testing.TB, r io.Reader, seed [32]byte, p Params) [][]byte {
	t.Helper()
	c := New(r, seed, p)
	buf := make([]byte, p.Max)
	var chunks [][]byte
	for {
		chunk, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			if chunk != nil {
				t.Fatalf("Next returned %d bytes together with io.EOF", len(chunk))
			}
			return chunks
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		chunks = append(chunks, bytes.Clone(chunk))
	}
}

func sizes(chunks [][]byte) []int {
	s := make([]int, len(chunks))
	for i, c := range chunks {
		s[i] = len(c)
	}
	return s
}

// checkChunks asserts that chunks reassemble to data and that every chunk but
// the last is within [Min, Max] (the last within [1, Max]).
func checkChunks(t *testing.T, data []byte, chunks [][]byte, p Params) {
	t.Helper()
	if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
		t.Fatalf("concatenated chunks (%d bytes) differ from input (%d bytes)", len(got), len(data))
	}
	for i, c := range chunks {
		lo := p.Min
		if i == len(chunks)-1 {
			lo = 1
		}
		if len(c) < lo || len(c) > p.Max {
			t.Fatalf("chunk %d of %d has size %d, want within [%d, %d]", i, len(chunks), len(c), lo, p.Max)
		}
	}
}

func TestChunksReassembleAndRespectBounds(t *testing.T) {
	p := DefaultParams
	sizesToTest := []int{0, 1, p.Min - 1, p.Min, p.Min + 1, p.Avg, p.Max - 1, p.Max, p.Max + 1, 2*p.Max + 7, 64 << 20}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		sizesToTest = append(sizesToTest, rng.IntN(12<<20))
	}
	for _, n := range sizesToTest {
		data := data64M()[:n]
		chunks := chunkAll(t, bytes.NewReader(data), testSeed, p)
		checkChunks(t, data, chunks, p)
		if n == 0 && len(chunks) != 0 {
			t.Errorf("empty input gave %d chunks, want 0", len(chunks))
		}
		if n > 0 && n <= p.Min && len(chunks) != 1 {
			t.Errorf("%d-byte input gave %d chunks, want 1", n, len(chunks))
		}
	}
}

func TestSmallParamsManyBoundaries(t *testing.T) {
	data := randomData(8<<20, 2)
	chunks := chunkAll(t, bytes.NewReader(data), testSeed, smallParams)
	checkChunks(t, data, chunks, smallParams)

	mean := float64(len(data)) / float64(len(chunks))
	t.Logf("params %+v: %d chunks, mean size %.0f bytes (%.2f x Avg)", smallParams, len(chunks), mean, mean/float64(smallParams.Avg))
	// Level-2 normalization puts the expected size slightly above Avg.
	if lo, hi := 0.8*float64(smallParams.Avg), 1.4*float64(smallParams.Avg); mean < lo || mean > hi {
		t.Errorf("mean chunk size %.0f, want within [%.0f, %.0f]", mean, lo, hi)
	}
}

func TestMeanChunkSizeDefaultParams(t *testing.T) {
	data := data64M()
	chunks := chunkAll(t, bytes.NewReader(data), testSeed, DefaultParams)
	mean := float64(len(data)) / float64(len(chunks))
	t.Logf("DefaultParams on 64 MiB random data: %d chunks, mean size %.0f bytes (%.2f MiB)", len(chunks), mean, mean/(1<<20))
	// Only ~55 samples, so the band is wide.
	if lo, hi := 0.7*float64(DefaultParams.Avg), 1.6*float64(DefaultParams.Avg); mean < lo || mean > hi {
		t.Errorf("mean chunk size %.0f, want within [%.0f, %.0f]", mean, lo, hi)
	}
}

func TestDeterministicPerSeed(t *testing.T) {
	data := randomData(4<<20, 3)
	a := sizes(chunkAll(t, bytes.NewReader(data), testSeed, smallParams))
	b := sizes(chunkAll(t, bytes.NewReader(data), testSeed, smallParams))
	if !slices.Equal(a, b) {
		t.Fatal("same seed and input gave different chunk boundaries")
	}
	other := sizes(chunkAll(t, bytes.NewReader(data), otherSeed, smallParams))
	if slices.Equal(a, other) {
		t.Fatal("different seeds gave identical chunk boundaries")
	}
	// Boundaries are cumulative offsets; with independent gear tables almost
	// none of them should coincide.
	cuts := func(s []int) map[int]bool {
		m := make(map[int]bool, len(s))
		off := 0
		for _, n := range s {
			off += n
			m[off] = true
		}
		return m
	}
	ca, co := cuts(a), cuts(other)
	shared := 0
	for off := range ca {
		if co[off] {
			shared++
		}
	}
	// The final offset (end of input) is always shared.
	t.Logf("%d of %d cut points shared between two seeds", shared, len(ca))
	if frac := float64(shared) / float64(len(ca)); frac > 0.05 {
		t.Errorf("%d of %d cut points shared between seeds (%.1f%%), want <= 5%%", shared, len(ca), 100*frac)
	}
}

// TestInsertOneByte is the acceptance test for shift resistance: after
// inserting one byte at the start of a 64 MiB file, at least 95% of the
// original chunks must reappear unchanged.
func TestInsertOneByte(t *testing.T) {
	orig := data64M()
	shifted := append([]byte{0x42}, orig...)

	hashes := func(chunks [][]byte) map[[32]byte]bool {
		m := make(map[[32]byte]bool, len(chunks))
		for _, c := range chunks {
			m[blake3.Sum256(c)] = true
		}
		return m
	}
	before := chunkAll(t, bytes.NewReader(orig), testSeed, DefaultParams)
	after := hashes(chunkAll(t, bytes.NewReader(shifted), testSeed, DefaultParams))

	reused := 0
	for _, c := range before {
		if after[blake3.Sum256(c)] {
			reused++
		}
	}
	pct := 100 * float64(reused) / float64(len(before))
	t.Logf("1-byte insert at start of 64 MiB: %d of %d original chunks reused (%.2f%%)", reused, len(before), pct)
	if pct < 95 {
		t.Errorf("only %.2f%% of chunks reused, want >= 95%%", pct)
	}
}

// shortReader returns at most a random small number of bytes per Read and,
// once failAt bytes have been returned, fails with err.
type shortReader struct {
	data   []byte
	rng    *rand.Rand
	failAt int
	err    error
	off    int
}

func (r *shortReader) Read(p []byte) (int, error) {
	if r.off >= r.failAt {
		return 0, r.err
	}
	n := min(len(p), 1+r.rng.IntN(5000), r.failAt-r.off, len(r.data)-r.off)
	if n == 0 {
		return 0, io.EOF
	}
	copy(p, r.data[r.off:r.off+n])
	r.off += n
	return n, nil
}

func TestShortReadsGiveSameBoundaries(t *testing.T) {
	data := randomData(1<<20, 4)
	want := chunkAll(t, bytes.NewReader(data), testSeed, smallParams)

	readers := map[string]io.Reader{
		"random short reads": &shortReader{data: data, rng: rand.New(rand.NewPCG(5, 6)), failAt: len(data) + 1},
		"one byte reads":     iotest.OneByteReader(bytes.NewReader(data)),
		"data with EOF":      iotest.DataErrReader(bytes.NewReader(data)),
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			got := chunkAll(t, r, testSeed, smallParams)
			if !slices.Equal(sizes(got), sizes(want)) {
				t.Fatalf("boundaries differ from a single-read reader")
			}
			checkChunks(t, data, got, smallParams)
		})
	}
}

func TestReadErrorMidway(t *testing.T) {
	errBoom := errors.New("boom")
	data := randomData(1<<20, 7)
	const failAt = 300 << 10
	r := &shortReader{data: data, rng: rand.New(rand.NewPCG(8, 9)), failAt: failAt, err: errBoom}
	c := New(r, testSeed, smallParams)

	var got []byte
	var err error
	for {
		var chunk []byte
		chunk, err = c.Next(nil)
		if err != nil {
			if chunk != nil {
				t.Errorf("Next returned %d bytes together with error %v", len(chunk), err)
			}
			break
		}
		got = append(got, chunk...)
	}
	if !errors.Is(err, errBoom) {
		t.Fatalf("Next error = %v, want one wrapping %v", err, errBoom)
	}
	if len(got) == 0 || len(got) > failAt || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("chunks before the error (%d bytes) are not a non-empty prefix of the %d bytes read", len(got), failAt)
	}
	if _, err2 := c.Next(nil); !errors.Is(err2, errBoom) {
		t.Errorf("Next after error = %v, want the sticky error", err2)
	}

	// Reset clears the error and chunks the new reader from scratch.
	c.Reset(bytes.NewReader(data))
	var all [][]byte
	for {
		chunk, err := c.Next(nil)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next after Reset: %v", err)
		}
		all = append(all, chunk)
	}
	checkChunks(t, data, all, smallParams)
}

func TestNextReusesBuffer(t *testing.T) {
	data := randomData(64<<10, 10)
	c := New(bytes.NewReader(data), testSeed, smallParams)
	buf := make([]byte, smallParams.Max)
	first, err := c.Next(buf)
	if err != nil {
		t.Fatal(err)
	}
	if &first[0] != &buf[0] {
		t.Error("Next allocated although cap(buf) >= Max")
	}
	n := len(first)

	small := make([]byte, 0, 1)
	second, err := c.Next(small)
	if err != nil {
		t.Fatal(err)
	}
	if len(second) < smallParams.Min || !bytes.Equal(second, data[n:n+len(second)]) {
		t.Errorf("Next with a too small buf returned %d bytes not matching the input", len(second))
	}
}

// TestRollMatchesBytewiseHash checks the unrolled loop in roll against the
// plain byte-at-a-time definition of the gear hash and cut condition.
func TestRollMatchesBytewiseHash(t *testing.T) {
	gear := gearTable(testSeed)
	rng := rand.New(rand.NewPCG(13, 14))
	data := randomData(1<<16, 15)
	for range 2000 {
		d := data[rng.IntN(len(data)):]
		d = d[:rng.IntN(len(d)+1)]
		mask := ^uint64(0) << (64 - rng.IntN(12))
		start := rng.Uint64()

		wantN, wantFP, wantFound := len(d), start, false
		for i, b := range d {
			wantFP = wantFP<<1 + gear[b]
			if wantFP&mask == 0 {
				wantN, wantFound = i+1, true
				break
			}
		}
		n, fp, found := roll(gear, start, d, mask)
		if n != wantN || fp != wantFP || found != wantFound {
			t.Fatalf("roll(len %d, mask %#x) = (%d, %#x, %v), want (%d, %#x, %v)",
				len(d), mask, n, fp, found, wantN, wantFP, wantFound)
		}
	}
}

// countingReaderAt counts the reads made of it.
type countingReaderAt struct {
	r     io.ReaderAt
	reads int
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.reads++
	return c.r.ReadAt(p, off)
}

// TestSizedInputFirstRead: a file read through an io.SectionReader (as the
// backup reads files) takes its first read at its size, up to the largest
// read (and a chunk's unhashed first Min bytes), so a small one takes one
// read: it took one per doubling from 4 KiB, four for 40 KiB and five for
// 300 KiB. The chunks are the same.
func TestSizedInputFirstRead(t *testing.T) {
	for _, tc := range []struct{ size, reads int }{
		{0, 0},
		{100, 1},
		{40 << 10, 1},
		{maxReadSize, 1},
		{maxReadSize + 1, 1}, // with the unhashed first Min bytes
		{300 << 10, 1},
	} {
		data := randomData(tc.size, 21)
		src := &countingReaderAt{r: bytes.NewReader(data)}
		c := New(nil, testSeed, DefaultParams)
		c.Reset(io.NewSectionReader(src, 0, int64(len(data))))
		got := allChunks(t, c)
		if src.reads != tc.reads {
			t.Errorf("%d bytes: %d reads, want %d", tc.size, src.reads, tc.reads)
		}
		want := allChunks(t, New(iotest.OneByteReader(bytes.NewReader(data)), testSeed, DefaultParams))
		if len(got) != len(want) || !bytes.Equal(bytes.Join(got, nil), data) {
			t.Errorf("%d bytes: %d chunks, want %d, reassembling the input", tc.size, len(got), len(want))
		}
	}
}

// allChunks returns every chunk c cuts, each in its own buffer.
func allChunks(t *testing.T, c *Chunker) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		chunk, err := c.Next(nil)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, chunk)
	}
}

func TestNewPanicsOnInvalidParams(t *testing.T) {
	for _, p := range []Params{
		{Min: -1, Avg: 2, Max: 4},
		{Min: 8, Avg: 4, Max: 16},
		{Min: 1, Avg: 32, Max: 16},
		{},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", p)
				}
			}()
			New(bytes.NewReader(nil), testSeed, p)
		}()
	}
}

func TestGearTableCachedPerSeed(t *testing.T) {
	if gearTable(testSeed) != gearTable(testSeed) {
		t.Error("gear table derived twice for the same seed")
	}
	if *gearTable(testSeed) == *gearTable(otherSeed) {
		t.Error("different seeds gave the same gear table")
	}
}

func BenchmarkChunker(b *testing.B) {
	data := randomData(64<<20, 11)
	r := bytes.NewReader(data)
	c := New(r, testSeed, DefaultParams)
	buf := make([]byte, DefaultParams.Max)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		r.Reset(data)
		c.Reset(r)
		for {
			_, err := c.Next(buf)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkSmallFile measures the per-file cost of New for a tiny file.
func BenchmarkSmallFile(b *testing.B) {
	data := randomData(1<<10, 12)
	buf := make([]byte, DefaultParams.Max)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c := New(bytes.NewReader(data), testSeed, DefaultParams)
		if _, err := c.Next(buf); err != nil {
			b.Fatal(err)
		}
	}
}
