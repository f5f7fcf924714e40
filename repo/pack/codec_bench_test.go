//go:build cgo

package pack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/zeebo/blake3"
	"golang.org/x/sys/unix"

	"github.com/azfs/azfs/repo/chunker"
)

// BenchmarkCodecCorpus compares the zstd codecs and levels on the unique
// chunks of a tree, cut as the backup cuts them (chunker.DefaultParams,
// seed 0) and each compressed on its own, as the writer does: CPU seconds
// of the benchmark's thread (so other load on the machine inflates them
// little) to encode and to decode every chunk, and the payload bytes
// stored (raw where zstd does not save 1/32). It then replays the writer's
// incompressible-data trial (EncodePayload's samples) with several trial
// levels and thresholds. Run it with -benchtime 1x (one pass):
//
//	AZFS_CODEC_CORPUS=/var/tmp/azfs-bench/corpus go test -run XXX -bench CodecCorpus -benchtime 1x -timeout 60m ./repo/pack
//
// docs/performance.md §2.2 holds its table for the bench corpus.
func BenchmarkCodecCorpus(b *testing.B) {
	dir := os.Getenv("AZFS_CODEC_CORPUS")
	if dir == "" {
		b.Skip("AZFS_CODEC_CORPUS names no tree to read")
	}
	for b.Loop() {
		report := codecCorpus(b, dir)
		b.Log("\n" + report)
	}
}

// codecVariant is one way of compressing a chunk, and the decoder its
// frames are read back with.
type codecVariant struct {
	name string
	enc  func(dst, src []byte) []byte
	dec  zstdCodec
}

// zstdMinMatch is ZSTD_c_minMatch of zstd.h.
const zstdMinMatch = 105

// cWith compresses with C zstd as s says.
func cWith(s ...int32) func(dst, src []byte) []byte {
	return func(dst, src []byte) []byte { return cZstd.encodeWith(dst[:0], src, s) }
}

func viaCodec(z zstdCodec, l codecLevel) func(dst, src []byte) []byte {
	return func(dst, src []byte) []byte { return z.encode(dst[:0], src, l) }
}

// chunkCosts are what one chunk cost each variant and each trial.
type chunkCosts struct {
	size             int
	encNs, decNs     []int64
	stored           []int // payload bytes: frame+1, or size+1 when raw
	trialNs          []int64
	trialSize        []int // the four samples' frames together; 0 when not sampled
	compressedSample bool
}

func threadCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

func codecCorpus(b *testing.B, dir string) string {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	variants := []codecVariant{
		{"Go fastest (goCodec fast)", viaCodec(goZstd, codecLevel(CompressFast)), goZstd},
		{"Go default (goCodec balanced)", viaCodec(goZstd, codecLevel(CompressBalanced)), goZstd},
		{"Go better (goCodec small)", viaCodec(goZstd, codecLevel(CompressSmall)), goZstd},
		{"C --fast=3", cWith(zstdLevel, -3), cZstd},
		{"C --fast=1", cWith(zstdLevel, -1), cZstd},
		{"C 1 (cCodec fast)", viaCodec(cZstd, codecLevel(CompressFast)), cZstd},
		{"C 2", cWith(zstdLevel, 2), cZstd},
		{"C 2, minMatch 5", cWith(zstdLevel, 2, zstdMinMatch, 5), cZstd},
		{"C 3, hashLog 15, chainLog 15", cWith(zstdLevel, 3, zstdHashLog, 15, zstdChainLog, 15), cZstd},
		{"C 3, hashLog 14, chainLog 16", cWith(zstdLevel, 3, zstdHashLog, 14, zstdChainLog, 16), cZstd},
		{"C 3, hashLog 15, chainLog 16 (cCodec balanced)", viaCodec(cZstd, codecLevel(CompressBalanced)), cZstd},
		{"C 3, hashLog 16, chainLog 15", cWith(zstdLevel, 3, zstdHashLog, 16, zstdChainLog, 15), cZstd},
		{"C 3", cWith(zstdLevel, 3), cZstd},
		{"C 4", cWith(zstdLevel, 4), cZstd},
		{"C 5 (cCodec small)", viaCodec(cZstd, codecLevel(CompressSmall)), cZstd},
		{"C 6", cWith(zstdLevel, 6), cZstd},
		{"C 1, read by Go", cWith(zstdLevel, 1), goZstd},
		{"Go fastest, read by C", viaCodec(goZstd, codecLevel(CompressFast)), cZstd},
	}
	// The trial's table compresses at cCodec's levels (variants' rows).
	fast, def, small := 5, 10, 14
	trials := []struct {
		name string
		enc  func(dst, src []byte) []byte
	}{
		{"Go fastest (goCodec sample)", viaCodec(goZstd, levelSample)},
		{"C --fast=1 (cCodec sample)", viaCodec(cZstd, levelSample)},
		{"C 1", cWith(zstdLevel, 1)},
		{"C --fast=4", cWith(zstdLevel, -4)},
	}

	var chunks []chunkCosts
	seen := map[[32]byte]bool{}
	ch := chunker.New(nil, [32]byte{}, chunker.DefaultParams)
	buf := make([]byte, 0, chunker.DefaultParams.Max)
	frame := make([]byte, 0, compressBound(chunker.DefaultParams.Max))
	plain := make([]byte, 0, chunker.DefaultParams.Max)
	var files, total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		files++
		ch.Reset(f)
		for {
			chunk, err := ch.Next(buf)
			if err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			buf = chunk[:0]
			total += int64(len(chunk))
			sum := blake3.Sum256(chunk)
			if seen[sum] {
				continue
			}
			seen[sum] = true
			c := chunkCosts{size: len(chunk)}
			for _, v := range variants {
				t0 := threadCPU()
				frame = v.enc(frame, chunk)
				t1 := threadCPU()
				var err error
				plain, err = v.dec.decode(plain[:0], frame, len(chunk))
				t2 := threadCPU()
				if err != nil || !bytes.Equal(plain, chunk) {
					return fmt.Errorf("%s: %s: %d bytes do not read back: %v", v.name, path, len(chunk), err)
				}
				c.encNs = append(c.encNs, t1-t0)
				c.decNs = append(c.decNs, t2-t1)
				c.stored = append(c.stored, 1+min(len(frame), len(chunk)+1)) // raw unless it saves
				if len(frame) > len(chunk)-len(chunk)/32 {
					c.stored[len(c.stored)-1] = 1 + len(chunk)
				}
			}
			for _, tr := range trials {
				size, ns := 0, int64(0)
				if len(chunk) > sampleFrom {
					for i := 1; i <= sampleCount; i++ {
						at := len(chunk)*i/(sampleCount+1) - sampleLen/2
						t0 := threadCPU()
						frame = tr.enc(frame, chunk[at:at+sampleLen])
						ns += threadCPU() - t0
						size += len(frame)
					}
				}
				c.trialNs = append(c.trialNs, ns)
				c.trialSize = append(c.trialSize, size)
			}
			chunks = append(chunks, c)
		}
	})
	if err != nil {
		b.Fatal(err)
	}

	var unique int64
	for _, c := range chunks {
		unique += int64(c.size)
	}
	gb := float64(unique) / 1e9
	var out strings.Builder
	fmt.Fprintf(&out, "%s: %d files, %.1f MB, %d unique chunks of %.1f MB (chunker.DefaultParams, seed 0), one thread, %s\n\n",
		dir, files, float64(total)/1e6, len(chunks), float64(unique)/1e6, time.Now().UTC().Format(time.RFC3339))

	tw := tabwriter.NewWriter(&out, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "every chunk compressed\t payload MB\t encode CPU s\t s/GB\t decode CPU s\t s/GB\t")
	for i, v := range variants {
		var st, enc, dec int64
		for _, c := range chunks {
			st += int64(c.stored[i])
			enc += c.encNs[i]
			dec += c.decNs[i]
		}
		fmt.Fprintf(tw, "%s\t %.1f\t %.2f\t %.2f\t %.2f\t %.2f\t\n", v.name, float64(st)/1e6, float64(enc)/1e9, float64(enc)/1e9/gb, float64(dec)/1e9, float64(dec)/1e9/gb)
	}
	tw.Flush()

	// The writer's policy: chunks over sampleFrom whose trial does not save
	// 1/threshold are stored raw without a full compression.
	fmt.Fprintln(&out)
	tw = tabwriter.NewWriter(&out, 0, 0, 1, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "trial (4 x 16 KiB samples)\t threshold\t trial CPU s\t judged raw: chunks\t MB\t MB they save at C 1 / C 2 / C 3\t payload MB at C 2\t CPU s at C 2 with trial\t")
	for ti, tr := range trials {
		for _, thr := range []int{64, 32, 16} {
			var trialNs, rawBytes, st, cpu int64
			var rawChunks int
			var save [3]int64
			for _, c := range chunks {
				trialNs += c.trialNs[ti]
				cpu += c.trialNs[ti]
				const all = sampleCount * sampleLen
				if c.trialSize[ti] > 0 && c.trialSize[ti] >= all-all/thr {
					rawChunks++
					rawBytes += int64(c.size)
					for k, vi := range []int{fast, def, small} {
						save[k] += int64(c.size+1) - int64(c.stored[vi])
					}
					st += int64(c.size + 1)
					continue
				}
				st += int64(c.stored[def])
				cpu += c.encNs[def]
			}
			fmt.Fprintf(tw, "%s\t 1/%d\t %.2f\t %d\t %.1f\t %.1f / %.1f / %.1f\t %.1f\t %.2f\t\n", tr.name, thr, float64(trialNs)/1e9, rawChunks, float64(rawBytes)/1e6,
				float64(save[0])/1e6, float64(save[1])/1e6, float64(save[2])/1e6, float64(st)/1e6, float64(cpu)/1e9)
		}
	}
	tw.Flush()
	return out.String()
}
