// Package smb implements [storage.Storage] on a directory of an SMB share,
// spoken to directly with an SMB 2/3 client library, so that no kernel CIFS
// mount (root, mount.cifs, credentials in fstab) is needed.
//
// A store is a share, or a directory below its root: in the store at
// smb://backup@nas/vaults/home the object "data/ab/<hex>" is the file
// \home\data\ab\<hex> of share "vaults" on host "nas". [ParseLocation]
// reads such locations, and UNC paths (\\nas\vaults\home); [Open] opens an
// existing directory and [Create] makes it first if needed.
//
// The protocol is github.com/cloudsoda/go-smb2, the maintained fork of
// hirochachacha/go-smb2 that rclone uses: pure Go (no cgo, no libsmbclient),
// SMB 2.0.2 to 3.1.1 with signing and AES-CCM/GCM encryption, NTLMv2
// authentication. azfs builds it from third_party/go-smb2 with a small
// patch (see AZFS-PATCH.md there) adding hard links, which upstream lacks.
//
// # Security
//
// Sessions must be SMB 3.0 or later and signed, and a guest or anonymous
// logon is refused: a server that offers less fails [Open] with an error
// wrapping [ErrInsecure], unless [Auth.Insecure] allows it. Messages are
// encrypted whenever the server asks for it, for the session or for the
// share (Samba's "server smb encrypt = desired" or "required", Windows'
// EncryptData); [Store.Security] says what was negotiated. The objects azfs
// stores are encrypted and authenticated anyway: signing keeps a
// man-in-the-middle from deleting or replacing files unnoticed, and
// encryption hides which files there are and their sizes. The password is
// given in [Auth] and kept in memory only.
//
// # Saves
//
// Save writes the data to a temporary file ".tmp-*" in the target
// directory, flushes it (SMB FLUSH; Samba fsyncs), gives it its final name
// with a hard link, which the server refuses if the name exists, and
// removes the temporary name. So objects are never overwritten, even with
// many concurrent writers on many machines, and readers never see a partial
// object. The share's file system must support hard links: NTFS and ReFS
// on Windows do, as do Samba's usual POSIX file systems. A Save whose link
// landed but whose answer was lost fails; the retry wrapper (package retry)
// that azfs puts over a share then finds the name taken and compares the
// stored bytes with its own. A lost connection or a crash may leave
// ".tmp-*" files behind; they are never listed and may be deleted by hand.
//
// # Connections
//
// A store keeps a small pool of sessions (up to [Auth.Conns], each its own
// TCP connection and, on Samba, its own server process), one request at a
// time on each, so that concurrent uploads and loads proceed in parallel. A
// session whose request fails other than with an answer from the server (a
// dropped connection, a restarted server, a timeout) is closed and not
// reused: the next request dials a new one. List holds a session only
// while it reads a directory, never while its callback runs. The store
// does not retry by itself: the retry wrapper does, calling again. Reads
// and writes of more than 1 MiB go as 1 MiB requests, 4 at once.
package smb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	smb2 "github.com/cloudsoda/go-smb2"
	"golang.org/x/sync/errgroup"

	"github.com/azfs/azfs/repo/storage"
)

// ErrInsecure reports a server that offers only SMB 2, or a session that is
// not signed, where [Auth.Insecure] does not allow it.
var ErrInsecure = errors.New("insecure SMB session")

// ErrLogon reports a server that refused the user name or password.
var ErrLogon = errors.New("the server refused the user name or password")

// DefaultConns is the number of sessions a store keeps when [Auth.Conns]
// is 0: enough for the backup's concurrent uploads and the loads beside
// them.
const DefaultConns = 4

// Auth is how a store logs on to the share.
type Auth struct {
	Password string
	// Insecure allows SMB 2.x and unsigned sessions (--smb-insecure).
	Insecure bool
	// Conns bounds the sessions the store keeps (DefaultConns when 0).
	Conns int
}

// Security is what a session negotiated.
type Security struct {
	Dialect   uint16 // such as 0x311 for SMB 3.1.1
	Signed    bool
	Encrypted bool
}

// String describes the security as "SMB 3.1.1, signed, encrypted".
func (s Security) String() string {
	str := fmt.Sprintf("SMB %d.%d", s.Dialect>>8, s.Dialect>>4&0xf)
	if d := s.Dialect & 0xf; d != 0 {
		str += "." + strconv.Itoa(int(d))
	}
	if s.Signed {
		str += ", signed"
	} else {
		str += ", not signed"
	}
	if s.Encrypted {
		str += ", encrypted"
	} else {
		str += ", not encrypted"
	}
	return str
}

// tmpPrefix starts the names of temporary files. Valid object names never
// have an element starting with ".", so these never collide with objects.
const tmpPrefix = ".tmp-"

// Store is a vault stored in a directory of an SMB share.
type Store struct {
	loc  Location
	auth Auth
	sec  Security
	// slots holds a token for each request under way; idle the sessions
	// not in use.
	slots chan struct{}
	idle  chan *session
	mu    sync.Mutex
	open  map[*session]struct{} // every live session, to close them
}

var _ storage.Storage = (*Store)(nil)

// session is one logged-on SMB session with the share mounted.
type session struct {
	sess  *smb2.Session
	share *smb2.Share
}

// Open returns the store at loc, logging on with auth. It fails with an
// error wrapping [storage.ErrNotFound] if the share or the directory does
// not exist, [ErrLogon] if the server refuses the account, [ErrInsecure]
// if the session would be insecure, and [storage.ErrPermission] if the
// account may not use the share.
func Open(ctx context.Context, loc Location, auth Auth) (*Store, error) {
	return open(ctx, "open", loc, auth)
}

// Create makes the directory of loc, and its missing parents, if it does
// not exist, and returns the store there. An existing directory is used as
// it is, whether empty or not; the vault layer decides what to do with it.
func Create(ctx context.Context, loc Location, auth Auth) (*Store, error) {
	return open(ctx, "create", loc, auth)
}

func open(ctx context.Context, op string, loc Location, auth Auth) (*Store, error) {
	if err := loc.validate(); err != nil {
		return nil, &storage.Error{Op: op, Name: loc.String(), Err: err}
	}
	if auth.Conns <= 0 {
		auth.Conns = DefaultConns
	}
	s := &Store{
		loc: loc, auth: auth,
		slots: make(chan struct{}, auth.Conns),
		idle:  make(chan *session, auth.Conns),
		open:  map[*session]struct{}{},
	}
	err := s.do(ctx, func(sh *smb2.Share) error {
		dir := s.path("")
		if dir == "" {
			return nil
		}
		if op == "create" {
			return sh.MkdirAll(dir, 0o700)
		}
		fi, err := sh.Stat(dir)
		if err == nil && !fi.IsDir() {
			return &fs.PathError{Op: "open", Path: dir, Err: syscall.ENOTDIR}
		}
		return err
	})
	if err != nil {
		s.Close()
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		}
		return nil, &storage.Error{Op: op, Name: loc.String(), Err: err}
	}
	return s, nil
}

// Location returns where the store is.
func (s *Store) Location() Location { return s.loc }

// Security returns what the first session negotiated.
func (s *Store) Security() Security { return s.sec }

// Close logs off every session. Requests under way fail; later ones dial
// again.
func (s *Store) Close() error {
	s.mu.Lock()
	all := s.open
	s.open = map[*session]struct{}{}
	s.mu.Unlock()
	for c := range all {
		c.close()
	}
	return nil
}

// dial connects, logs on and mounts the share, refusing an insecure
// session unless s.auth allows one.
func (s *Store) dial(ctx context.Context) (*session, error) {
	d := &smb2.Dialer{
		Negotiator: smb2.Negotiator{RequireMessageSigning: !s.auth.Insecure},
		Initiator: &smb2.NTLMInitiator{
			User:     s.loc.User,
			Password: s.auth.Password,
			Domain:   s.loc.Domain,
		},
	}
	sess, err := d.Dial(ctx, s.loc.Addr())
	if err != nil {
		return nil, logonError(err)
	}
	sec := Security{Dialect: sess.Dialect(), Signed: sess.Signed()}
	if !s.auth.Insecure && (sec.Dialect < 0x300 || !sec.Signed) {
		sess.Logoff()
		return nil, fmt.Errorf("%w: the server offers %s; SMB 3 with signing is required (--smb-insecure allows less)", ErrInsecure, sec)
	}
	share, err := sess.WithContext(ctx).Mount(s.loc.UNC())
	if err != nil {
		sess.Logoff()
		if code, ok := status(err); ok && code == statusBadNetworkName {
			return nil, fmt.Errorf("%w: no share %q on %s", storage.ErrNotFound, s.loc.Share, s.loc.Host)
		}
		return nil, fmt.Errorf("share %s: %w", s.loc.UNC(), err)
	}
	sec.Encrypted = share.Encrypted()
	c := &session{sess: sess, share: share}
	s.mu.Lock()
	s.open[c] = struct{}{}
	if s.sec.Dialect == 0 {
		s.sec = sec
	}
	s.mu.Unlock()
	return c, nil
}

func (c *session) close() {
	c.sess.Logoff() // closes the connection too; its answer does not matter
}

// NT status codes the store tells apart.
const (
	statusLogonFailure     = 0xC000006D
	statusAccountDisabled  = 0xC0000072
	statusPasswordExpired  = 0xC0000071
	statusAccountRestrict  = 0xC000006E
	statusBadNetworkName   = 0xC00000CC
	statusNotADirectory    = 0xC0000103
	statusFileIsADirectory = 0xC00000BA
	statusDiskFull         = 0xC000007F
	statusWriteProtected   = 0xC00000A2
	statusDeletePending    = 0xC0000056
	statusSharingViolation = 0xC0000043
)

// status returns the NT status of a server's error answer.
func status(err error) (uint32, bool) {
	var re *smb2.ResponseError
	if errors.As(err, &re) {
		return re.Code, true
	}
	return 0, false
}

// logonError translates the errors of logging on.
func logonError(err error) error {
	if code, ok := status(err); ok {
		switch code {
		case statusLogonFailure, statusAccountDisabled, statusPasswordExpired, statusAccountRestrict:
			return fmt.Errorf("%w (%w)", ErrLogon, err)
		}
	}
	return err
}

// do runs fn on a session of the pool, dialling one if none is idle.
// A session whose request failed other than with the server's answer is
// closed rather than put back.
func (s *Store) do(ctx context.Context, fn func(*smb2.Share) error) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.slots }()
	var c *session
	select {
	case c = <-s.idle:
	default:
		var err error
		if c, err = s.dial(ctx); err != nil {
			return err
		}
	}
	err := fn(c.share.WithContext(ctx))
	if err != nil && !answered(err) || ctx.Err() != nil {
		s.mu.Lock()
		delete(s.open, c)
		s.mu.Unlock()
		c.close()
		return err
	}
	s.mu.Lock()
	_, live := s.open[c] // not closed by Close meanwhile
	s.mu.Unlock()
	if live {
		s.idle <- c
	}
	return err
}

// answered reports whether err is the server's answer to a request, after
// which the session is as good as before.
func answered(err error) bool {
	var re *smb2.ResponseError
	return errors.As(err, &re) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) ||
		errors.Is(err, fs.ErrPermission) || errors.Is(err, storage.ErrNotFound) ||
		errors.Is(err, storage.ErrRange) || errors.Is(err, syscall.ENOTDIR)
}

// path returns the share path of an object name, or of the store's
// directory for "".
func (s *Store) path(name string) string {
	p := path.Join(s.loc.Path, name)
	if p == "." {
		return ""
	}
	return strings.ReplaceAll(p, "/", `\`)
}

// mapErr translates what the server answered: a missing file (or a file
// where a directory was expected) wraps [storage.ErrNotFound], a refusal
// [storage.ErrPermission] (a read-only share answers writes with
// STATUS_ACCESS_DENIED or STATUS_MEDIA_WRITE_PROTECTED), a full disk
// syscall.ENOSPC.
func mapErr(err error) error {
	if code, ok := status(err); ok {
		switch code {
		case statusNotADirectory, statusFileIsADirectory, statusDeletePending:
			return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		case statusWriteProtected:
			return fmt.Errorf("%w: %w", storage.ErrPermission, err)
		case statusDiskFull:
			return fmt.Errorf("%w: %w", syscall.ENOSPC, err)
		}
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	}
	return err
}

// pieceSize is the most one read or write request carries: go-smb2 splits
// larger ones into requests of 1 MiB (what Windows servers accept), sent
// one after the other.
const pieceSize = 1 << 20

// piecesAtOnce bounds the requests of one read or write in flight: enough
// to keep the connection and the server busy while the client encrypts the
// next, within the credits a session has (128 of 64 KiB).
const piecesAtOnce = 4

// inPieces calls fn for each piece [off, end) of [0, total), piecesAtOnce
// of them at once, and returns the first error.
func inPieces(total int, fn func(off, end int) error) error {
	var g errgroup.Group
	g.SetLimit(piecesAtOnce)
	for off := 0; off < total; off += pieceSize {
		end := min(off+pieceSize, total)
		g.Go(func() error { return fn(off, end) })
	}
	return g.Wait()
}

// untilShared runs fn until it does not fail with a sharing violation,
// a few times at most. Removing a file's temporary name opens it for
// deletion, sharing it only with other deleters, while a Load of its final
// name opens it for reading, sharing it with readers and writers only: for
// the moment both are open, whichever came second fails.
func untilShared(fn func() error) error {
	var err error
	for wait := time.Millisecond; ; wait *= 2 {
		err = fn()
		if code, ok := status(err); !ok || code != statusSharingViolation || wait > 100*time.Millisecond {
			return err
		}
		time.Sleep(wait)
	}
}

// Save stores data under name atomically and durably, failing with
// [storage.ErrExists] if name already exists.
func (s *Store) Save(ctx context.Context, name string, data []byte) error {
	if err := storage.Check(ctx, "save", name); err != nil {
		return err
	}
	err := s.do(ctx, func(sh *smb2.Share) error { return s.save(ctx, sh, name, data) })
	if err != nil {
		return &storage.Error{Op: "save", Name: name, Err: err}
	}
	return nil
}

func (s *Store) save(ctx context.Context, sh *smb2.Share, name string, data []byte) error {
	final := s.path(name)
	dir := s.path(path.Dir(name))
	tmp, err := writeTemp(sh, dir, data)
	if errors.Is(err, fs.ErrNotExist) {
		// The first object of its directory.
		if err := sh.MkdirAll(dir, 0o700); err != nil {
			return mapErr(err)
		}
		tmp, err = writeTemp(sh, dir, data)
	}
	if err != nil {
		return mapErr(err)
	}
	// Last chance to abort cheaply before the object becomes visible.
	err = ctx.Err()
	if err == nil {
		err = sh.Link(tmp, final)
	}
	// The temporary name goes whatever happened: on success the data lives
	// on under the final name. Failing to remove it is harmless (temporary
	// files are never listed), so that is deliberately not reported.
	untilShared(func() error { return sh.Remove(tmp) })
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %w", storage.ErrExists, err)
	}
	return mapErr(err)
}

// writeTemp writes data to a new temporary file in dir, flushes and closes
// it, and returns its share path. On failure it removes the file.
func writeTemp(sh *smb2.Share, dir string, data []byte) (string, error) {
	var name string
	var f *smb2.File
	var err error
	for {
		name = tmpPrefix + strconv.FormatUint(rand.Uint64(), 36)
		if dir != "" {
			name = dir + `\` + name
		}
		f, err = sh.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return "", err
	}
	if err = inPieces(len(data), func(off, end int) error {
		_, err := f.WriteAt(data[off:end], int64(off))
		return err
	}); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		sh.Remove(name)
		return "", err
	}
	return name, nil
}

// Load reads the range [off, off+length) of name: an open, whose answer
// carries the size, reads of up to 1 MiB, 4 at once, and a close.
func (s *Store) Load(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if err := storage.Check(ctx, "load", name); err != nil {
		return nil, err
	}
	var buf []byte
	err := s.do(ctx, func(sh *smb2.Share) error {
		var err error
		buf, err = load(sh, s.path(name), off, length)
		return err
	})
	if err != nil {
		return nil, &storage.Error{Op: "load", Name: name, Err: mapErr(err)}
	}
	return buf, nil
}

func load(sh *smb2.Share, p string, off, length int64) ([]byte, error) {
	var f *smb2.File
	err := untilShared(func() (err error) {
		f, err = sh.Open(p)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// What the server said when it opened the file: no round trip.
	fi := f.OpenInfo()
	if fi.IsDir() {
		return nil, storage.ErrNotFound
	}
	n, err := storage.ClampRange(fi.Size(), off, length)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	err = inPieces(len(buf), func(from, to int) error {
		// The library's ReadAt returns a short count without io.EOF at
		// the end of the file.
		got, err := f.ReadAt(buf[from:to], off+int64(from))
		if err == nil && got < to-from {
			err = fmt.Errorf("file shrank while reading (%d of %d bytes at offset %d): %w", got, to-from, off+int64(from), io.ErrUnexpectedEOF)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return buf, nil
}

// Stat returns the size and modification time of name.
func (s *Store) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := storage.Check(ctx, "stat", name); err != nil {
		return storage.Info{}, err
	}
	var fi fs.FileInfo
	err := s.do(ctx, func(sh *smb2.Share) error {
		var err error
		fi, err = sh.Stat(s.path(name))
		return err
	})
	if err == nil && fi.IsDir() {
		err = storage.ErrNotFound
	}
	if err != nil {
		return storage.Info{}, &storage.Error{Op: "stat", Name: name, Err: mapErr(err)}
	}
	return storage.Info{Name: name, Size: fi.Size(), Modified: fi.ModTime().UTC()}, nil
}

// List walks only the directory subtree that prefix falls in, skipping
// subdirectories that cannot contain a match and temporary files. It reads
// one directory at a time, and calls fn holding no session, so that fn may
// use the store.
func (s *Store) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := storage.CheckList(ctx, prefix); err != nil {
		return err
	}
	err := s.walk(ctx, storage.PrefixDir(prefix), prefix, fn)
	var werr walkError
	if errors.As(err, &werr) {
		return &storage.Error{Op: "list", Name: prefix, Err: mapErr(werr.err)}
	}
	return err // nil, or fn's own error unchanged
}

// walkError marks the walk's own errors, to tell them from fn's.
type walkError struct{ err error }

func (e walkError) Error() string { return e.err.Error() }

// walk lists the objects matching prefix in the directory rel and below.
func (s *Store) walk(ctx context.Context, rel, prefix string, fn func(storage.Info) error) error {
	var entries []fs.FileInfo
	err := s.do(ctx, func(sh *smb2.Share) error {
		var err error
		entries, err = sh.ReadDir(s.path(rel))
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil // listed, or nothing matches (deleted meanwhile, or never made)
		}
		if fi, serr := sh.Lstat(s.path(rel)); serr == nil && !fi.IsDir() {
			return nil // a file, which Samba will not list (STATUS_NOT_SUPPORTED)
		}
		return err
	})
	if err != nil {
		return walkError{err}
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return walkError{err}
		}
		if strings.HasPrefix(e.Name(), ".") {
			continue // temporary files, or anything else that cannot be an object
		}
		name := path.Join(rel, e.Name())
		switch {
		case e.IsDir():
			if !storage.MayHold(name, prefix) {
				continue
			}
			if err := s.walk(ctx, name, prefix, fn); err != nil {
				return err
			}
		case e.Mode().IsRegular() && strings.HasPrefix(name, prefix) && storage.ValidName(name):
			if err := fn(storage.Info{Name: name, Size: e.Size(), Modified: e.ModTime().UTC()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes name. Directories are left in place: removing them would
// race with concurrent Saves into them.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := storage.Check(ctx, "delete", name); err != nil {
		return err
	}
	err := s.do(ctx, func(sh *smb2.Share) error {
		p := s.path(name)
		fi, err := sh.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return storage.ErrNotFound // a directory is not an object
		}
		return untilShared(func() error { return sh.Remove(p) })
	})
	if err != nil {
		return &storage.Error{Op: "delete", Name: name, Err: mapErr(err)}
	}
	return nil
}
