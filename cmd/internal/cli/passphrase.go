package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/term"

	"github.com/azfs/azfs/keys"
)

// Environment variables that stand in for flags (restic's
// RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE and RESTIC_PASSWORD_COMMAND); a
// flag given wins.
const (
	// VaultEnv is the vault's location (--vault).
	VaultEnv = "AZFS_VAULT"
	// PassphraseFileEnv names the file holding the passphrase that opens
	// the vault (--passphrase-file).
	PassphraseFileEnv = "AZFS_PASSPHRASE_FILE"
	// PassphraseCommandEnv is a shell command printing that passphrase
	// (--passphrase-command).
	PassphraseCommandEnv = "AZFS_PASSPHRASE_COMMAND"
)

// PassphraseSource is where the passphrase that opens a vault (a
// machine's or the owner's) comes from when this machine does not hold the
// keys: a file, the output of a shell command, else the terminal. It is
// never where a new passphrase comes from: one set in the environment for
// opening must not become a new machine's or key slot's by accident.
type PassphraseSource struct {
	File    string // --passphrase-file
	Command string // --passphrase-command
}

// resolve returns s, else the source the environment names; a file and a
// command together are a usage error.
func (s PassphraseSource) resolve(getenv func(string) string) (PassphraseSource, error) {
	if s.File != "" && s.Command != "" {
		return s, Usagef("--passphrase-file and --passphrase-command are exclusive")
	}
	if s.File != "" || s.Command != "" {
		return s, nil
	}
	s = PassphraseSource{File: getenv(PassphraseFileEnv), Command: getenv(PassphraseCommandEnv)}
	if s.File != "" && s.Command != "" {
		return s, Usagef("%s and %s are both set: unset one", PassphraseFileEnv, PassphraseCommandEnv)
	}
	return s, nil
}

// Read reads the passphrase whose names (such as "the passphrase of
// machine web01") from the source, else asks on the terminal with prompt.
func (s PassphraseSource) Read(whose, prompt string) (keys.Passphrase, error) {
	s, err := s.resolve(os.Getenv)
	if err != nil {
		return "", err
	}
	switch {
	case s.File != "":
		return readPassphraseFile(s.File)
	case s.Command != "":
		return runPassphraseCommand(s.Command)
	}
	pass, err := askPassphrase(prompt, false)
	if errors.Is(err, errNoTerminal) {
		return "", Usagef("%s is needed: pass --passphrase-file FILE or --passphrase-command CMD (or set %s or %s); there is no terminal to ask on",
			whose, PassphraseFileEnv, PassphraseCommandEnv)
	}
	return pass, err
}

// Given reports whether a passphrase is given up front, by a flag or the
// environment (package open: it then goes before the owner's escrow).
func (s PassphraseSource) Given() (bool, error) {
	s, err := s.resolve(os.Getenv)
	return s != PassphraseSource{}, err
}

// Passphrase reads the passphrase whose names (package open's question,
// such as "the passphrase of machine web01"): from the source, else asked
// for on the terminal ("Passphrase of machine web01: ").
func (s PassphraseSource) Passphrase(whose string) (keys.Passphrase, error) {
	prompt := strings.TrimPrefix(whose, "the ")
	if prompt != "" {
		prompt = strings.ToUpper(prompt[:1]) + prompt[1:]
	}
	return s.Read(whose, prompt+": ")
}

// readPassphraseFile reads a passphrase file: its content without the
// line ending, and without the byte order mark Windows Notepad puts first.
func readPassphraseFile(file string) (keys.Passphrase, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read passphrase file: %w", err)
	}
	return keys.Passphrase(strings.TrimRight(strings.TrimPrefix(string(b), utf8BOM), "\r\n")), nil
}

// utf8BOM is the UTF-8 encoding of U+FEFF, the byte order mark.
const utf8BOM = "\ufeff"

// runPassphraseCommand runs command with sh and returns what it prints on
// stdout, without the line ending. Its stdin and stderr are azfs's, for a
// password manager that asks.
func runPassphraseCommand(command string) (keys.Passphrase, error) {
	cmd := exec.Command("sh", "-c", command)
	cmd.Stdin, cmd.Stderr = os.Stdin, os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("passphrase command %q: %w", command, err)
	}
	pass := strings.TrimRight(out.String(), "\r\n")
	if pass == "" {
		return "", fmt.Errorf("passphrase command %q printed no passphrase", command)
	}
	return keys.Passphrase(pass), nil
}

// errNoTerminal is askPassphrase's error when there is no terminal.
var errNoTerminal = errors.New("no terminal to ask on")

// askPassphrase asks for a passphrase on the terminal without echo; confirm
// asks twice.
func askPassphrase(prompt string, confirm bool) (keys.Passphrase, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return "", errNoTerminal
	}
	defer tty.Close()
	read := func(p string) (string, error) {
		fmt.Fprint(tty, p)
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return "", fmt.Errorf("read passphrase: %w", err)
		}
		return string(b), nil
	}
	p1, err := read(prompt)
	if err != nil {
		return "", err
	}
	if confirm {
		p2, err := read("Repeat the passphrase: ")
		if err != nil {
			return "", err
		}
		if p1 != p2 {
			return "", errors.New("the passphrases do not match")
		}
	}
	return keys.Passphrase(p1), nil
}
