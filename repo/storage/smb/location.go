package smb

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/azfs/azfs/repo/storage"
)

// DefaultPort is the port of SMB over TCP.
const DefaultPort = 445

// Location names a store: a directory on an SMB share, and the account
// that reaches it. It holds no password.
type Location struct {
	Host   string // host name or IP address, without brackets
	Port   int    // TCP port; 0 means DefaultPort
	Domain string // the account's domain; empty for a server's local account
	User   string
	Share  string
	// Path is empty (the share's root) or a valid object name such as
	// "vaults/home"; the store's objects are the files below it.
	Path string
}

// String returns the location as an smb:// URL:
// smb://[DOMAIN;]USER@HOST[:PORT]/SHARE[/PATH], the port only when it is
// not 445.
func (l Location) String() string {
	u := url.URL{Scheme: "smb", Host: l.Host, Path: "/" + l.Share}
	if strings.Contains(l.Host, ":") {
		u.Host = "[" + l.Host + "]"
	}
	if l.Port != 0 && l.Port != DefaultPort {
		u.Host += ":" + strconv.Itoa(l.Port)
	}
	if l.Path != "" {
		u.Path += "/" + l.Path
	}
	if l.User != "" {
		u.User = url.User(account(l.Domain, l.User))
	}
	return u.String()
}

// Addr returns the host and port to dial.
func (l Location) Addr() string {
	port := l.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(l.Host, strconv.Itoa(port))
}

// UNC returns the share's UNC name, \\HOST\SHARE, as servers expect it in
// a tree connect.
func (l Location) UNC() string {
	return `\\` + l.Host + `\` + l.Share
}

// IsLocation reports whether s names an SMB share, as smb://... or as a
// UNC path \\HOST\SHARE\PATH, rather than a local directory.
func IsLocation(s string) bool {
	return strings.HasPrefix(s, "smb://") || strings.HasPrefix(s, `\\`)
}

// ParseLocation parses a share location, one of
//
//	smb://[DOMAIN;]USER@HOST[:PORT]/SHARE[/PATH]
//	\\HOST\SHARE[\PATH]
//
// user is the account given apart (--smb-user): "USER", "DOMAIN\USER" or
// "DOMAIN;USER". A UNC path needs it; in an smb:// URL it replaces the
// account the URL names, if any (a machine that reaches a vault with
// another account than the one its credentials file names). A password in the URL
// is refused: it would show in process listings and shell histories. A
// trailing separator is ignored. Errors are *[storage.Error] values with Op
// "parse" that never show a password.
func ParseLocation(s, user string) (Location, error) {
	fail := func(name string, err error) (Location, error) {
		return Location{}, &storage.Error{Op: "parse", Name: name, Err: err}
	}
	var loc Location
	var rest string // SHARE[/PATH], slash-separated
	switch {
	case strings.HasPrefix(s, "smb://"):
		if i := strings.IndexAny(s, "?#"); i >= 0 {
			return fail(s[:i], errors.New("a share location has no query string or fragment"))
		}
		u, err := url.Parse(s)
		if err != nil {
			var uerr *url.Error
			if errors.As(err, &uerr) {
				err = uerr.Err // without the URL, which may hold a password
			}
			return fail(redact(s), err)
		}
		if _, ok := u.User.Password(); ok {
			return fail(u.Redacted(), errors.New("a share location has no password: give it with --smb-password-file or AZFS_SMB_PASSWORD_FILE"))
		}
		loc.Host = u.Hostname()
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return fail(s, fmt.Errorf("invalid port %q", p))
			}
			loc.Port = n
		}
		if u.User != nil {
			loc.Domain, loc.User = splitAccount(u.User.Username())
			if loc.User == "" {
				return fail(s, errors.New("empty user name"))
			}
		}
		rest = strings.TrimPrefix(u.Path, "/")
	case strings.HasPrefix(s, `\\`):
		if strings.Contains(s, "/") {
			return fail(s, errors.New(`a UNC path separates with "\", not "/"`))
		}
		host, path, _ := strings.Cut(s[2:], `\`)
		h, p, err := net.SplitHostPort(host)
		switch {
		case err == nil:
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return fail(s, fmt.Errorf("invalid port %q", p))
			}
			loc.Host, loc.Port = h, n
		default:
			loc.Host = host
		}
		rest = strings.ReplaceAll(path, `\`, "/")
	default:
		return fail(s, errors.New(`not a share location: want smb://[DOMAIN;]USER@HOST[:PORT]/SHARE/PATH or \\HOST\SHARE\PATH`))
	}
	if user != "" {
		domain, name := splitAccount(user)
		if name == "" {
			return fail(loc.String(), fmt.Errorf("invalid user %q", user))
		}
		loc.Domain, loc.User = domain, name
	}
	rest = strings.TrimSuffix(rest, "/")
	loc.Share, loc.Path, _ = strings.Cut(rest, "/")
	if err := loc.validate(); err != nil {
		return fail(loc.String(), err)
	}
	return loc, nil
}

// splitAccount splits "DOMAIN;USER" or "DOMAIN\USER" into its domain and
// user name.
func splitAccount(s string) (domain, user string) {
	if i := strings.IndexAny(s, `;\`); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

// account returns "DOMAIN;USER", or "USER" without a domain.
func account(domain, user string) string {
	if domain == "" {
		return user
	}
	return domain + ";" + user
}

// redact returns an smb:// URL that did not parse with anything between
// "//" and "@" replaced, since it may hold a password.
func redact(s string) string {
	after, ok := strings.CutPrefix(s, "smb://")
	if i := strings.LastIndexByte(after, '@'); ok && i >= 0 {
		return "smb://xxxxx" + after[i:]
	}
	return s
}

// validate checks the parts of a location.
func (l Location) validate() error {
	switch {
	case l.Host == "":
		return errors.New("missing host")
	case strings.ContainsAny(l.Host, `\/@ `) || !printable(l.Host):
		return fmt.Errorf("invalid host %q", l.Host)
	case l.User == "":
		return errors.New("no user: name it in the location (smb://USER@HOST/SHARE) or with --smb-user")
	case !printable(l.User) || !printable(l.Domain) || strings.ContainsAny(l.User, `;\`):
		return fmt.Errorf("invalid user %q", l.User)
	case !validShare(l.Share):
		return fmt.Errorf("invalid share name %q: 1 to 80 characters, none of \\ / : * ? \" < > | and no control characters", l.Share)
	case l.Path != "" && !storage.ValidName(l.Path):
		return fmt.Errorf("invalid path %q in the share: %w", l.Path, storage.ErrInvalidName)
	}
	return nil
}

// validShare reports whether s can name a share.
func validShare(s string) bool {
	return s != "" && len(s) <= 80 && printable(s) && !strings.ContainsAny(s, `\/:*?"<>|`)
}

// printable reports whether s has no control characters.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
