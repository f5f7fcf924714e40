package smb

import (
	"errors"
	"strings"
	"testing"

	"github.com/azfs/azfs/repo/storage"
)

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		in, user string
		want     Location
		str      string // String(), when not in
	}{
		{"smb://backup@nas/vaults", "", Location{Host: "nas", User: "backup", Share: "vaults"}, ""},
		{"smb://backup@nas/vaults/", "", Location{Host: "nas", User: "backup", Share: "vaults"}, "smb://backup@nas/vaults"},
		{"smb://backup@nas/vaults/home/laptop", "", Location{Host: "nas", User: "backup", Share: "vaults", Path: "home/laptop"}, ""},
		{"smb://CORP;backup@nas.corp.example:4450/Backups$/azs", "", Location{Host: "nas.corp.example", Port: 4450, Domain: "CORP", User: "backup", Share: "Backups$", Path: "azs"}, ""},
		{"smb://backup@nas:445/v", "", Location{Host: "nas", Port: 445, User: "backup", Share: "v"}, "smb://backup@nas/v"},
		{"smb://backup@[fd00::1]/v/p", "", Location{Host: "fd00::1", User: "backup", Share: "v", Path: "p"}, ""},
		{"smb://nas/vaults/p", "backup", Location{Host: "nas", User: "backup", Share: "vaults", Path: "p"}, "smb://backup@nas/vaults/p"},
		{"smb://backup@nas/vaults", "backup", Location{Host: "nas", User: "backup", Share: "vaults"}, ""},
		{"smb://backup@nas/vaults", `CORP\restore`, Location{Host: "nas", Domain: "CORP", User: "restore", Share: "vaults"}, "smb://CORP;restore@nas/vaults"},
		{`\\nas\vaults\home\laptop`, `CORP\backup`, Location{Host: "nas", Domain: "CORP", User: "backup", Share: "vaults", Path: "home/laptop"}, "smb://CORP;backup@nas/vaults/home/laptop"},
		{`\\10.0.0.5\AzSBackup`, "CORP;svc", Location{Host: "10.0.0.5", Domain: "CORP", User: "svc", Share: "AzSBackup"}, "smb://CORP;svc@10.0.0.5/AzSBackup"},
		{`\\127.0.0.1:4450\v\p\`, "u", Location{Host: "127.0.0.1", Port: 4450, User: "u", Share: "v", Path: "p"}, "smb://u@127.0.0.1:4450/v/p"},
	} {
		got, err := ParseLocation(tc.in, tc.user)
		if err != nil {
			t.Errorf("ParseLocation(%q, %q): %v", tc.in, tc.user, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseLocation(%q, %q) = %+v, want %+v", tc.in, tc.user, got, tc.want)
		}
		str := tc.str
		if str == "" {
			str = tc.in
		}
		if got.String() != str {
			t.Errorf("ParseLocation(%q, %q).String() = %q, want %q", tc.in, tc.user, got.String(), str)
		}
		// String gives back a location that parses to the same.
		again, err := ParseLocation(got.String(), "")
		if got.Port == DefaultPort {
			again.Port = DefaultPort
		}
		if err != nil || again != got {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", got.String(), again, err, got)
		}
		if !IsLocation(tc.in) {
			t.Errorf("IsLocation(%q) = false", tc.in)
		}
	}

	for _, tc := range []struct {
		in, user, msg string
	}{
		{"smb://backup:SECRET@nas/v", "", "no password"},
		{"smb://backup@nas/v?x=1", "", "no query string"},
		{"smb://nas/v", "", "no user"},
		{`\\nas\v`, "", "no user"},
		{"smb://backup@nas", "", "invalid share name"},
		{"smb://backup@nas/", "", "invalid share name"},
		{"smb://backup@/v", "", "missing host"},
		{"smb://backup@nas:0/v", "", "invalid port"},
		{"smb://backup@nas:99999/v", "", "invalid port"},
		{`\\nas:x\v`, "u", "invalid port"},
		{"smb://backup@nas/v/a//b", "", "invalid path"},
		{"smb://backup@nas/v/.hidden", "", "invalid path"},
		{"smb://backup@nas/v/a/../b", "", "invalid path"},
		{`\\nas\v\a\..\b`, "u", "invalid path"},
		{"smb://backup@nas/a:b", "", "invalid share name"},
		{`\\nas/v`, "u", `separates with "\"`},
		{"smb://;@nas/v", "", "empty user name"},
		{"smb://backup@nas/v", `CORP\`, "invalid user"},
		{"/srv/vault", "", "not a share location"},
		{"smb://x:SECRET@nas:bad/v", "", ""},
	} {
		loc, err := ParseLocation(tc.in, tc.user)
		var serr *storage.Error
		if !errors.As(err, &serr) {
			t.Errorf("ParseLocation(%q, %q) = %+v, %v; want a *storage.Error", tc.in, tc.user, loc, err)
			continue
		}
		if serr.Op != "parse" || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("ParseLocation(%q, %q): error %q (Op %q), want Op \"parse\" and a message containing %q", tc.in, tc.user, err, serr.Op, tc.msg)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("ParseLocation(%q): error %q shows the password", tc.in, err)
		}
	}
	for _, s := range []string{"/srv/vault", "vault", "//nas/share", "https://a.blob.core.windows.net/c", `C:\vault`} {
		if IsLocation(s) {
			t.Errorf("IsLocation(%q) = true", s)
		}
	}
}

// FuzzParseLocation: any string either parses to a valid location whose
// String parses back to the same, or fails with a *storage.Error that
// never shows a password given in the URL.
func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"smb://backup@nas/vaults/home", `\\nas\v\p`, "smb://D;u@[::1]:1/s/p", "smb://u:pw@h/s", "smb://%zz@h/s"} {
		f.Add(s, "")
		f.Add(s, `D\u`)
	}
	f.Fuzz(func(t *testing.T, s, user string) {
		loc, err := ParseLocation(s, user)
		if err != nil {
			var serr *storage.Error
			if !errors.As(err, &serr) || serr.Op != "parse" {
				t.Fatalf("ParseLocation(%q, %q): error %v is not a parse *storage.Error", s, user, err)
			}
			return
		}
		if err := loc.validate(); err != nil {
			t.Fatalf("ParseLocation(%q, %q) = %+v, which is invalid: %v", s, user, loc, err)
		}
		again, err := ParseLocation(loc.String(), "")
		if loc.Port == DefaultPort {
			again.Port = DefaultPort
		}
		if err != nil || again != loc {
			t.Fatalf("ParseLocation(%q, %q) = %+v, but its String %q parses to %+v, %v", s, user, loc, loc.String(), again, err)
		}
	})
}
