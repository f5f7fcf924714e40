//go:build ignore

// bench/profile.sh copies this file, without the build constraint above, into the copies of
// cmd/azfs and cmd/azmount it builds, after renaming their main to profiledMain: the
// commands then write the CPU profile AZFS_CPUPROFILE and the allocation profile
// AZFS_MEMPROFILE names when they return from main (an exit through os.Exit, on an error,
// writes none). Any revision can be profiled this way, the ones before the profiles too.

package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

func main() {
	if p := os.Getenv("AZFS_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			os.Exit(1)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if p := os.Getenv("AZFS_MEMPROFILE"); p != "" {
		defer func() {
			f, err := os.Create(p)
			if err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
				return
			}
			defer f.Close()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
			}
		}()
	}
	profiledMain()
}
