// Package cli holds what the azfs and azmount commands share: finding and
// opening the vault, reading passphrases without echo, parsing sizes, and
// turning errors into one-line messages and exit codes.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo/storage"
	"github.com/azfs/azfs/repo/storage/location"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitError   = 1
	ExitUsage   = 2
	ExitPartial = 3 // a backup committed a point but skipped some files
	// ExitInterrupted is a command stopped by SIGINT (Ctrl-C) or SIGTERM:
	// 128 + SIGINT, as shells report it.
	ExitInterrupted = 130
)

// exitCodes is the one table from an error's kind to the exit code; every
// kind it does not name exits with ExitError. The commands' only
// cancellation is a signal's.
var exitCodes = map[errkind.Kind]int{
	errkind.Usage:    ExitUsage,
	errkind.Partial:  ExitPartial,
	errkind.Canceled: ExitInterrupted,
}

// ErrInterrupted is the error of a command stopped by SIGINT or SIGTERM.
var ErrInterrupted = errkind.New(errkind.Canceled, "interrupted")

// Interrupted returns the error of a command that ended with err after a
// signal cancelled its context: err when it says more than that the
// context was cancelled, else [ErrInterrupted]; either way [ExitCode] maps
// it to ExitInterrupted.
func Interrupted(err error) error {
	if errors.Is(err, ErrInterrupted) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return ErrInterrupted
	}
	return fmt.Errorf("%w: %w", ErrInterrupted, err)
}

// UsageError is a problem with the command line. Its kind is errkind.Usage.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Kind is errkind.Usage.
func (e *UsageError) Kind() errkind.Kind { return errkind.Usage }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// ExitCode maps an error to the process exit code by its kind (exitCodes).
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if code, ok := exitCodes[errkind.Of(err)]; ok {
		return code
	}
	return ExitError
}

// Message renders err as one line for the user: newlines become spaces,
// and other control characters (a carriage return, a terminal escape) are
// written as %q writes them, so that a name from the file system or the
// storage inside an error can neither forge a line nor redraw one.
func Message(err error) string {
	return OneLine(err.Error())
}

// ReadNewPassphrase reads a new passphrase from file when it is set, else
// asks for it twice on the terminal without echo.
func ReadNewPassphrase(file, prompt string) (keys.Passphrase, error) {
	if file != "" {
		return readPassphraseFile(file)
	}
	pass, err := askPassphrase(prompt, true)
	if errors.Is(err, errNoTerminal) {
		return "", Usagef("a new passphrase is needed: pass --passphrase-file FILE or --generate-passphrase FILE; there is no terminal to ask on")
	}
	return pass, err
}

// WriteSecretFile writes a secret to path with mode 0600, refusing to
// replace an existing file.
func WriteSecretFile(path, secret string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists: not overwriting a passphrase file", path)
		}
		return fmt.Errorf("write passphrase file: %w", err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write passphrase file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write passphrase file: %w", err)
	}
	return f.Close()
}

// Requests tallies the storage requests of this process (reported by
// 'azfs backup --json' and by azmount when it unmounts).
var Requests storage.Counts

// StorageOptions returns how package location reaches the storage of a
// vault: a blob container with auth, a share as the --smb-* flags say, and
// every request counted in [Requests].
func StorageOptions(auth location.Auth) location.Options {
	return location.Options{Blob: auth, Share: Share.Logon(), Counts: &Requests}
}

// ParseSize parses the value of the size flag named flag: a decimal
// number of bytes with an optional unit, such as "256MiB", "1.5GiB", "512M"
// or "1048576" (K, M, G and T are binary units too). NaN, infinities,
// exponents, negative numbers and sizes of 8 EiB or more are refused with a
// one-line [UsageError] naming the flag and the value.
func ParseSize(flag, s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}}
	num, mult := s, int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	num = strings.Trim(num, " ")
	// Only digits and one point: ParseFloat alone would also take "NaN",
	// "Inf", "1e30", "0x1p60" and "-1".
	n, err := strconv.ParseFloat(num, 64)
	if num == "" || strings.Trim(num, "0123456789.") != "" || err != nil {
		return 0, Usagef("--%s %q: not a size (examples: 256MiB, 1GiB, 1048576)", flag, s)
	}
	bytes := n * float64(mult)
	if bytes >= math.MaxInt64 {
		return 0, Usagef("--%s %q: too large (the most is 8 EiB)", flag, s)
	}
	return int64(bytes), nil
}

// FormatBytes renders a byte count for people.
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// PeakRSS returns this process's peak resident set size in bytes (VmHWM
// of /proc/self/status), or 0 where the system does not say. Unlike
// getrusage's maximum, it does not count the parent's memory that a child
// inherits across fork and exec.
func PeakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kib << 10
		}
	}
	return 0
}

// Count renders n with noun, in the plural unless n is 1: "1 file",
// "2 files", "0 files". noun is the singular; its plural adds an s.
func Count[N ~int | ~int64 | ~uint64](n N, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
