// Command mkimage makes and changes disk images for bench/images.sh.
//
//	mkimage create [-size 4GiB] [-seed N] [-plain] PATH
//	mkimage change [-percent 1] [-run 4KiB] [-seed N] PATH
//
// create writes an image of pseudo-random (incompressible) bytes whose first
// sector ends with an MBR's boot signature, so that azfs cuts it as a disk
// image; with -plain, without the signature, so that it is chunked as any
// file. change rewrites percent of the image in pieces of run bytes, at
// random offsets that are multiples of 4 KiB (a file system's block), with
// new pseudo-random bytes, and prints how many bytes it changed.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "create":
		err = create(os.Args[2:])
	case "change":
		err = change(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mkimage create [-size 4GiB] [-seed N] [-plain] PATH | mkimage change [-percent 1] [-run 4KiB] [-seed N] PATH")
	os.Exit(2)
}

// size parses a size with an optional KiB, MiB or GiB suffix.
func size(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func source(seed uint64) *rand.ChaCha8 {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return rand.NewChaCha8(key)
}

func create(args []string) error {
	fs := flag.NewFlagSet("create", flag.ExitOnError)
	sizeFlag := fs.String("size", "4GiB", "image size")
	seed := fs.Uint64("seed", 1, "seed of the bytes")
	plain := fs.Bool("plain", false, "no MBR signature: azfs chunks it as an ordinary file")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	n, err := size(*sizeFlag)
	if err != nil {
		return err
	}
	f, err := os.Create(fs.Arg(0))
	if err != nil {
		return err
	}
	r := source(*seed)
	buf := make([]byte, 4<<20)
	for off := int64(0); off < n; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), n-off)]
		_, _ = r.Read(b)
		if off == 0 && len(b) >= 512 {
			b[510], b[511] = 0x55, 0xaa
			if *plain {
				b[510] = 0
			}
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func change(args []string) error {
	fs := flag.NewFlagSet("change", flag.ExitOnError)
	percent := fs.Float64("percent", 1, "share of the image to rewrite")
	runFlag := fs.String("run", "4KiB", "bytes rewritten at each offset")
	seed := fs.Uint64("seed", 1, "seed of the offsets and bytes")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	run, err := size(*runFlag)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(fs.Arg(0), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	const block = 4 << 10
	slots := (st.Size() - run) / block
	count := int64(float64(st.Size()) * *percent / 100 / float64(run))
	if slots < 1 || count < 1 {
		f.Close()
		return fmt.Errorf("cannot rewrite %g%% of %d bytes in runs of %d", *percent, st.Size(), run)
	}
	rng := rand.New(rand.NewPCG(*seed, 2))
	r := source(*seed + 1)
	buf := make([]byte, run)
	// Offsets are drawn without replacement, from the first 4 KiB on (the
	// signature stays).
	seen := make(map[int64]bool, count)
	for int64(len(seen)) < count {
		off := (1 + rng.Int64N(slots)) * block
		if seen[off] {
			continue
		}
		seen[off] = true
		_, _ = r.Read(buf)
		if _, err := f.WriteAt(buf, off); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Println(count * run)
	return nil
}
