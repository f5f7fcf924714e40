// Command smbserver runs a Samba server for bench/share.sh: smbd on
// 127.0.0.1 on a free port, as package smbtest starts it for the tests
// (its own smb.conf and state under a temporary directory, signed and
// encrypted sessions, shares vault0, vault1, ...). It writes the account's
// password to the file -password names (0600), prints
// "ADDR USER SHAREDIR" for share vault0 on one line, and stops smbd when its
// standard input closes or it is interrupted.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/azfs/azfs/repo/storage/smb/smbtest"
)

func main() {
	password := flag.String("password", "", "write the account's password to `FILE`")
	flag.Parse()
	if *password == "" {
		fmt.Fprintln(os.Stderr, "usage: smbserver -password FILE")
		os.Exit(2)
	}
	srv, err := smbtest.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "smbserver:", err)
		os.Exit(1)
	}
	code := 0
	if err := os.WriteFile(*password, []byte(srv.Password+"\n"), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "smbserver:", err)
		code = 1
	} else {
		fmt.Printf("%s %s %s\n", srv.Addr(), smbtest.User, srv.ShareDir("vault0"))
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		eof := make(chan struct{})
		go func() { io.Copy(io.Discard, os.Stdin); close(eof) }()
		select {
		case <-stop:
		case <-eof:
		}
	}
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "smbserver:", err)
		code = 1
	}
	os.Exit(code)
}
