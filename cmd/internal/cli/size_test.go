package cli

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0":          0,
		"1048576":    1 << 20,
		"256MiB":     256 << 20,
		"512M":       512 << 20,
		"1.5GiB":     3 << 29,
		"2T":         2 << 40,
		"7B":         7,
		" 3 KiB":     3 << 10,
		"8388607TiB": 8388607 << 40,
	} {
		got, err := ParseSize("cache-size", in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestParseSizeRefuses is finding 11 of issue 11: NaN, infinities and sizes
// that overflowed to negative numbers were accepted.
func TestParseSizeRefuses(t *testing.T) {
	for _, in := range []string{
		"NaN", "nanMiB", "Inf", "+Inf", "-InfGiB", "infinity", "-1", "-0.5KiB", "1e3", "0x10", "1_000",
		"999999999TiB", "8388608TiB", "9223372036854775808", "99999999999999999999", "", "MiB", ".", "1..2", "1\nMiB",
	} {
		got, err := ParseSize("cache-size", in)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("ParseSize(%q) = %d, %v; want a usage error", in, got, err)
			continue
		}
		if msg := Message(err); !strings.HasPrefix(msg, "--cache-size "+strconv.Quote(in)+": ") {
			t.Errorf("ParseSize(%q): message %q does not start with the flag and the quoted value", in, msg)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"256MiB", "1.5GiB", "0", "NaN", "Inf", "999999999TiB", "-1", "1e3", "8388607.99TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize("cache-size", s)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) || strings.ContainsAny(Message(err), "\n\r") {
				t.Fatalf("ParseSize(%q): error %q is not a one-line usage error", s, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, a negative size", s, n)
		}
		if d, err := strconv.ParseInt(s, 10, 64); err == nil && d != n {
			t.Fatalf("ParseSize(%q) = %d, want %d", s, n, d)
		}
	})
}

func TestCount(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{Count(0, "file"), "0 files"},
		{Count(1, "file"), "1 file"},
		{Count(uint64(2), "index file"), "2 index files"},
		{Count(int64(1), "point"), "1 point"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
