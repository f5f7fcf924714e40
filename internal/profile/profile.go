// Package profile writes Go runtime profiles of a command run when its
// environment asks for them: AZFS_CPUPROFILE names the file for a CPU
// profile of the whole run, AZFS_MEMPROFILE the file for an allocation
// profile written at its end. They are debugging knobs for measuring where
// a backup or a mount spends its time (see docs/performance.md); read the
// files with `go tool pprof BINARY FILE`.
package profile

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// The environment variables that ask for profiles.
const (
	CPUEnv = "AZFS_CPUPROFILE"
	MemEnv = "AZFS_MEMPROFILE"
)

// FromEnv starts the CPU profile AZFS_CPUPROFILE asks for and returns the
// function that ends it and writes the allocation profile AZFS_MEMPROFILE
// asks for. With neither set, it does nothing and stop does nothing.
func FromEnv() (stop func() error, err error) {
	return Start(os.Getenv(CPUEnv), os.Getenv(MemEnv))
}

// Start starts a CPU profile into cpuFile (none when "") and returns the
// function that stops it and writes an allocation profile into memFile
// (none when "").
func Start(cpuFile, memFile string) (stop func() error, err error) {
	var cpu *os.File
	if cpuFile != "" {
		if cpu, err = os.Create(cpuFile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("cpu profile %s: %w", cpuFile, err)
		}
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				errs = append(errs, fmt.Errorf("cpu profile: %w", err))
			}
		}
		if memFile != "" {
			errs = append(errs, writeAllocs(memFile))
		}
		return errors.Join(errs...)
	}, nil
}

// writeAllocs writes the allocation profile into file.
func writeAllocs(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	runtime.GC() // up-to-date figures of what is still in use
	err = pprof.Lookup("allocs").WriteTo(f, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("memory profile %s: %w", file, err)
	}
	return nil
}
