// Package smbtest gives tests a real Samba server: an smbd started on
// 127.0.0.1 on a free port, with its own smb.conf and private, lock, state
// and cache directories under a temporary directory, shares over temporary
// directories, and accounts made for the test with smbpasswd. A test calls
// [Start] (or [Shared], one server for the whole test binary, stopped by
// [StopShared] from TestMain); without smbd it is skipped, or failed under
// CI=true.
//
// Each server has [Shares] writable shares "vault0", "vault1", ... (hand
// them out with [Server.NewShare], each empty) and one share "ro" that the
// read-only account may read but not write. Sessions must be signed, and
// the server asks for encryption ("server smb encrypt = desired").
//
// It imports nothing of this module, so that package smb's own tests can
// use it.
package smbtest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The accounts of every server: unix accounts made with useradd if
// missing, and Samba accounts with random passwords made by smbpasswd.
const (
	User     = "azfs-smbtest"
	ReadOnly = "azfs-smbro"
)

// Shares is the number of writable shares of a server.
const Shares = 32

// Server is a running smbd.
type Server struct {
	Host string // 127.0.0.1
	Port int
	// Password is User's, ROPassword ReadOnly's.
	Password, ROPassword string
	// Dir holds smb.conf, the server's state, its log and the shares'
	// directories.
	Dir string

	cmd  *exec.Cmd
	mu   sync.Mutex
	next int // the next share NewShare hands out
}

// ShareDir returns the directory of share name on the server's disk.
func (s *Server) ShareDir(name string) string { return filepath.Join(s.Dir, "shares", name) }

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// NewShare returns the name of a writable share no earlier caller got, so
// empty unless a test wrote to its directory. It fails t when all are
// taken.
func (s *Server) NewShare(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == Shares {
		t.Fatalf("smbtest: all %d shares are taken", Shares)
	}
	s.next++
	return "vault" + strconv.Itoa(s.next-1)
}

// URL returns the smb:// location of path (may be empty) in share for
// user.
func (s *Server) URL(user, share, path string) string {
	u := "smb://" + user + "@" + s.Addr() + "/" + share
	if path != "" {
		u += "/" + path
	}
	return u
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the server of this test binary, starting it on first use.
// TestMain calls StopShared once the tests have run.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.once.Do(func() {
		if shared.err = available(); shared.err == nil {
			shared.srv, shared.err = start()
		}
	})
	if shared.err != nil {
		unavailable(t, shared.err)
	}
	return shared.srv
}

// StopShared stops the server Shared started, if it did.
func StopShared() error {
	if shared.srv == nil {
		return nil
	}
	return shared.srv.Stop()
}

// New starts a server, with global smb.conf settings added; the caller
// stops it with Stop. It fails when smbd cannot run here (see Start).
func New(global ...string) (*Server, error) {
	if err := available(); err != nil {
		return nil, err
	}
	return start(global...)
}

// Start starts a server of the test's own, stopped when the test ends,
// with global smb.conf settings added, such as "server max protocol =
// SMB2_10".
func Start(t testing.TB, global ...string) *Server {
	t.Helper()
	if err := available(); err != nil {
		unavailable(t, err)
	}
	s, err := start(global...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("smbd is required under CI=true (Debian: apt-get install samba): %v", err)
	}
	t.Skipf("smbd is unavailable: %v", err)
}

// available reports why no server can be started: no smbd or smbpasswd,
// or not root (smbd changes to the logged-on account's uid).
func available() error {
	for _, prog := range []string{"smbd", "smbpasswd", "useradd"} {
		if _, err := exec.LookPath(prog); err != nil {
			if _, err := os.Stat(filepath.Join("/usr/sbin", prog)); err != nil {
				return fmt.Errorf("%s: not found", prog)
			}
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("smbd needs root")
	}
	return nil
}

// prog returns the path of a Samba program, which may be in /usr/sbin
// outside PATH.
func prog(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return filepath.Join("/usr/sbin", name)
}

// ensureUser makes the unix account name if it does not exist.
func ensureUser(name string) error {
	if _, err := user.Lookup(name); err == nil {
		return nil
	}
	out, err := exec.Command(prog("useradd"), "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
	if _, lerr := user.Lookup(name); lerr == nil {
		return nil // made by us, or by a test binary beside us
	}
	return fmt.Errorf("useradd %s: %v: %s", name, err, out)
}

// freePort returns a TCP port of 127.0.0.1 that nothing listened on a
// moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(global ...string) (*Server, error) {
	for _, name := range []string{User, ReadOnly} {
		if err := ensureUser(name); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "azfs-smbd-")
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", Dir: dir, Password: rand.Text(), ROPassword: rand.Text()}
	if err := s.setup(global); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.run(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// setup writes smb.conf, makes the shares' directories and the Samba
// accounts.
func (s *Server) setup(global []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Port = port
	rw, err := user.Lookup(User)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(rw.Uid)
	gid, _ := strconv.Atoi(rw.Gid)
	for _, d := range []string{"private", "lock", "state", "cache", "pid", "ncalrpc", "shares"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return err
		}
	}
	// The shares' parent must let the accounts through.
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return err
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, `[global]
	server role = standalone server
	workgroup = AZFSTEST
	netbios name = AZFSTEST
	interfaces = 127.0.0.1
	bind interfaces only = yes
	smb ports = %[2]d
	disable netbios = yes
	server min protocol = SMB2_02
	server signing = mandatory
	server smb encrypt = desired
	map to guest = never
	restrict anonymous = 2
	passdb backend = tdbsam:%[1]s/private/passdb.tdb
	private dir = %[1]s/private
	lock directory = %[1]s/lock
	state directory = %[1]s/state
	cache directory = %[1]s/cache
	pid directory = %[1]s/pid
	ncalrpc dir = %[1]s/ncalrpc
	log file = %[1]s/log.smbd
	log level = 1
	max log size = 0
	load printers = no
	printing = bsd
	printcap name = /dev/null
	disable spoolss = yes
	usershare max shares = 0
	create mask = 0600
	directory mask = 0700
`, s.Dir, s.Port)
	for _, line := range global {
		fmt.Fprintf(&conf, "\t%s\n", line)
	}
	for i := range Shares {
		name := "vault" + strconv.Itoa(i)
		fmt.Fprintf(&conf, "[%s]\n\tpath = %s\n\tread only = no\n\tvalid users = %s\n", name, s.ShareDir(name), User)
	}
	// Both accounts act on the disk as User; Samba lets only User write.
	fmt.Fprintf(&conf, "[ro]\n\tpath = %s\n\tread only = yes\n\tvalid users = %s %s\n\twrite list = %s\n\tforce user = %s\n", s.ShareDir("ro"), User, ReadOnly, User, User)
	for i := range Shares + 1 {
		name := "ro"
		if i < Shares {
			name = "vault" + strconv.Itoa(i)
		}
		d := s.ShareDir(name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.Chown(d, uid, gid); err != nil {
			return err
		}
	}
	if err := os.WriteFile(s.conf(), []byte(conf.String()), 0o644); err != nil {
		return err
	}
	for _, acct := range [][2]string{{User, s.Password}, {ReadOnly, s.ROPassword}} {
		cmd := exec.Command(prog("smbpasswd"), "-c", s.conf(), "-s", "-a", acct[0])
		cmd.Stdin = strings.NewReader(acct[1] + "\n" + acct[1] + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("smbpasswd -a %s: %v: %s", acct[0], err, out)
		}
	}
	return nil
}

func (s *Server) conf() string { return filepath.Join(s.Dir, "smb.conf") }

// run starts smbd in the foreground, in a process group of its own (its
// children serve the connections), and waits until it accepts connections.
func (s *Server) run() error {
	cmd := exec.Command(prog("smbd"), "--foreground", "--no-process-group", "--configfile="+s.conf(), "--debug-stdout")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that Stop reaches the children; killed
	// with the test binary should that die without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start smbd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
			s.cmd = cmd // reaped by the goroutine above when it exits
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("smbd exited: %v\n%s%s", err, out.String(), s.log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return fmt.Errorf("smbd did not listen on %s within 20s\n%s%s", s.Addr(), out.String(), s.log())
		}
	}
}

// PID returns the process ID of the running smbd.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// log returns smbd's log file.
func (s *Server) log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log.smbd"))
	return string(b)
}

// kill stops smbd and the children serving connections: SIGTERM to its
// process group, SIGKILL if it is still there after a few seconds.
func (s *Server) kill() {
	pgid := s.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	for range 100 {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	for range 100 {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart stops smbd, dropping every connection, and starts it again on
// the same port with the same shares and accounts.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.kill()
	if err := s.run(); err != nil {
		t.Fatalf("restart smbd: %v", err)
	}
}

// Stop stops smbd and removes its directory, shares included.
func (s *Server) Stop() error {
	s.kill()
	return os.RemoveAll(s.Dir)
}
