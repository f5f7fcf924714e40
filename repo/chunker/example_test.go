package chunker_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"

	"github.com/azfs/azfs/repo/chunker"
)

func Example() {
	// A deterministic 10 MiB pseudo-random input.
	rng := rand.New(rand.NewPCG(2025, 1))
	data := make([]byte, 10<<20)
	for i := 0; i < len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
	}

	// In azfs the seed is a per-vault secret.
	var seed [32]byte
	copy(seed[:], "example seed, not a secret!")

	c := chunker.New(bytes.NewReader(data), seed, chunker.DefaultParams)
	buf := make([]byte, chunker.DefaultParams.Max)
	var sizes []int
	total := 0
	for {
		chunk, err := c.Next(buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		sizes = append(sizes, len(chunk))
		total += len(chunk)
	}
	fmt.Println("chunks:", len(sizes))
	fmt.Println("sizes:", sizes)
	fmt.Println("total:", total)
	// Output:
	// chunks: 8
	// sizes: [1136427 1537468 1153207 1423285 1882423 1191772 1109350 1051828]
	// total: 10485760
}
