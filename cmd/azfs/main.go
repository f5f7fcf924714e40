// Command azfs creates vaults, backs up directory trees into them, lists
// recovery points and checks vaults. Recovery points are mounted with azmount.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/azfs/azfs/cache/filecache"
	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/keys/keyring"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/backup"
	"github.com/azfs/azfs/repo/check"
	"github.com/azfs/azfs/repo/storage/local"
)

const usage = `usage: azfs COMMAND [flags]

commands:
  vault create PATH   create a vault (--passphrase-file F | --generate-passphrase F)
  backup PATH...      back up paths into the vault as a new recovery point
  points              list recovery points
  check               verify the vault (--read-data authenticates every byte)

Mount recovery points with azmount. 'azfs COMMAND --help' shows a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "azfs: "+cli.Message(err))
		}
		code := cli.ExitCode(err)
		if errors.Is(err, backup.ErrPartial) {
			code = cli.ExitPartial
		}
		if errors.Is(err, pflag.ErrHelp) {
			code = cli.ExitOK
		}
		os.Exit(code)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Print(usage)
		return nil
	}
	switch args[0] {
	case "vault":
		if len(args) < 2 || args[1] != "create" {
			return cli.Usagef("usage: azfs vault create PATH")
		}
		return vaultCreate(ctx, args[2:])
	case "backup":
		return backupCmd(ctx, args[1:])
	case "points":
		return pointsCmd(ctx, args[1:])
	case "check":
		return checkCmd(ctx, args[1:])
	}
	return cli.Usagef("unknown command %q (see 'azfs --help')", args[0])
}

func flags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("azfs "+name, pflag.ContinueOnError)
	fs.SortFlags = false
	return fs
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return cli.Usagef("%v", err)
	}
	return nil
}

func vaultCreate(ctx context.Context, args []string) error {
	fs := flags("vault create")
	passFile := fs.String("passphrase-file", "", "read the passphrase (at least 16 characters) from `FILE`")
	genFile := fs.String("generate-passphrase", "", "generate a random passphrase and write it to `FILE` (0600)")
	machine := fs.String("machine", cli.Hostname(), "this machine's `NAME` in the vault")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("usage: azfs vault create PATH [--passphrase-file F | --generate-passphrase F]")
	}
	if *passFile != "" && *genFile != "" {
		return cli.Usagef("--passphrase-file and --generate-passphrase are exclusive")
	}
	if *machine == "" || *machine == "." || *machine == ".." || strings.ContainsAny(*machine, "/\x00") {
		return cli.Usagef("invalid machine name %q: it names a directory in mounts, so no '/', NUL, '.' or '..'", *machine)
	}
	path, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	var pass keys.Passphrase
	if *genFile != "" {
		if pass, err = keys.GeneratePassphrase(); err != nil {
			return err
		}
	} else {
		if pass, err = cli.ReadPassphrase(*passFile, "New vault passphrase (16+ characters): ", true); err != nil {
			return err
		}
		if err := pass.Check(); err != nil {
			return err
		}
	}
	if entries, err := os.ReadDir(path); err == nil && len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(path, "config")); err == nil {
			return fmt.Errorf("a vault already exists at %s", path)
		}
		return fmt.Errorf("%s is not empty: a new vault needs an empty or missing directory", path)
	}
	if *genFile != "" {
		// Written before the vault exists, so the key is never unrecoverable.
		if err := cli.WriteSecretFile(*genFile, string(pass)); err != nil {
			return err
		}
	}
	st, err := local.Create(path)
	if err != nil {
		return fmt.Errorf("create vault at %s: %w", path, err)
	}
	v, err := repo.Create(ctx, st, pass, keys.DefaultKDF)
	if err != nil {
		return fmt.Errorf("create vault at %s: %w", path, err)
	}
	dir, err := keyring.ConfigDir()
	if err != nil {
		return err
	}
	ring, err := keyring.Load(dir)
	if err != nil {
		return err
	}
	ring.Add(&keyring.Vault{ID: v.ID(), Location: path, Machine: *machine, Keys: v.Keys()}, true)
	if err := ring.Save(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "created vault %s at %s (default vault of this machine, %s)\n", v.ID(), path, *machine)
	if *genFile != "" {
		fmt.Fprintf(os.Stderr, "passphrase written to %s: keep a copy away from this machine; it is needed to recover elsewhere\n", *genFile)
	}
	return nil
}

// backupMemoryLimit is the backup's soft heap limit (GOMEMLIMIT overrides it).
const backupMemoryLimit = 192 << 20

func backupCmd(ctx context.Context, args []string) error {
	fs := flags("backup")
	vaultPath := fs.String("vault", "", "vault `PATH` (default: this machine's default vault)")
	passFile := fs.String("passphrase-file", "", "read the passphrase from `FILE` when this machine has no keys for the vault")
	asJSON := fs.Bool("json", false, "print a JSON summary on stdout")
	quiet := fs.BoolP("quiet", "q", false, "no progress output")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return cli.Usagef("usage: azfs backup [--vault PATH] [--json] PATH...")
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The pipeline's memory is mostly short-lived, pointer-free pack and
		// chunk buffers: a soft limit has the collector reclaim them before
		// the heap doubles, at little CPU cost.
		debug.SetMemoryLimit(backupMemoryLimit)
	}
	o, err := cli.OpenVault(ctx, *vaultPath, *passFile)
	if err != nil {
		return err
	}
	cacheDir, err := keyring.CacheDir()
	if err != nil {
		return err
	}
	files, err := filecache.Open(filepath.Join(cacheDir, o.Vault.ID(), "files-"+o.Machine))
	if err != nil {
		fmt.Fprintf(os.Stderr, "azfs: warning: %v; every file will be read\n", err)
		files = nil
	}
	if files != nil {
		defer files.Close()
	}
	prog := &backup.Progress{}
	configDir, err := keyring.ConfigDir()
	if err != nil {
		return err
	}
	opts := backup.Options{
		Exclude:  []string{o.Location, cacheDir, configDir},
		Paths:    fs.Args(),
		Machine:  o.Machine,
		Hostname: cli.Hostname(),
		Files:    files,
		Progress: prog,
		OnError: func(path string, err error) {
			fmt.Fprintf(os.Stderr, "\r\033[Kazfs: skipped %s: %v\n", path, err)
		},
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	if !*quiet && term.IsTerminal(int(os.Stderr.Fd())) {
		go func() { cli.ShowProgress(os.Stderr, prog, 250*time.Millisecond, stop); close(done) }()
	} else {
		close(done)
	}
	p, err := backup.Run(ctx, o.Vault, opts)
	close(stop)
	<-done
	if p == nil {
		return err
	}
	if *asJSON {
		out := struct {
			Point   string          `json:"point"`
			Machine string          `json:"machine"`
			Time    time.Time       `json:"time"`
			Partial bool            `json:"partial"`
			Stats   repo.PointStats `json:"stats"`
			Seconds float64         `json:"seconds"`
		}{p.ID.String(), p.Machine, p.Time, p.Partial, p.Stats, p.Stats.Duration.Seconds()}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else if !*quiet {
		s := p.Stats
		fmt.Fprintf(os.Stderr, "point %s committed: %d files (%d new, %d changed, %d unchanged), %d dirs, %s; read %s, stored %s in %s\n",
			p.ID.Short(), s.Files, s.FilesNew, s.FilesChanged, s.FilesUnchanged, s.Dirs, cli.FormatBytes(s.Bytes),
			cli.FormatBytes(s.BytesRead), cli.FormatBytes(s.BytesStored), s.Duration.Round(time.Millisecond))
	}
	return err
}

func pointsCmd(ctx context.Context, args []string) error {
	fs := flags("points")
	vaultPath := fs.String("vault", "", "vault `PATH` (default: this machine's default vault)")
	passFile := fs.String("passphrase-file", "", "read the passphrase from `FILE` when this machine has no keys for the vault")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, err := cli.OpenVault(ctx, *vaultPath, *passFile)
	if err != nil {
		return err
	}
	points, err := o.Vault.Points(ctx)
	if err != nil {
		if !errors.Is(err, repo.ErrDamaged) {
			return err
		}
		fmt.Fprintf(os.Stderr, "azfs: warning: %s (run 'azfs check')\n", cli.Message(err))
	}
	if *asJSON {
		type row struct {
			ID      string    `json:"id"`
			Machine string    `json:"machine"`
			Time    time.Time `json:"time"`
			Paths   []string  `json:"paths"`
			Files   uint64    `json:"files"`
			Bytes   uint64    `json:"bytes"`
			Partial bool      `json:"partial"`
		}
		rows := make([]row, 0, len(points))
		for _, p := range points {
			rows = append(rows, row{p.ID.String(), p.Machine, p.Time, p.Paths, p.Stats.Files, p.Stats.Bytes, p.Partial})
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(points) == 0 {
		fmt.Println("no recovery points yet")
		return nil
	}
	fmt.Printf("%-8s  %-12s  %-19s  %9s  %10s  %s\n", "ID", "MACHINE", "TIME", "FILES", "SIZE", "PATHS")
	for _, p := range points {
		partial := ""
		if p.Partial {
			partial = " (partial)"
		}
		fmt.Printf("%-8s  %-12s  %-19s  %9d  %10s  %s%s\n", p.ID.Short(), p.Machine, p.Time.Local().Format("2006-01-02 15:04:05"),
			p.Stats.Files, cli.FormatBytes(p.Stats.Bytes), strings.Join(p.Paths, " "), partial)
	}
	return nil
}

func checkCmd(ctx context.Context, args []string) error {
	fs := flags("check")
	vaultPath := fs.String("vault", "", "vault `PATH` (default: this machine's default vault)")
	passFile := fs.String("passphrase-file", "", "read the passphrase from `FILE` when this machine has no keys for the vault")
	readData := fs.Bool("read-data", false, "read and authenticate every stored byte")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, err := cli.OpenVault(ctx, *vaultPath, *passFile)
	if err != nil {
		return err
	}
	res, err := check.Run(ctx, o.Vault, check.Options{
		ReadData: *readData,
		Problem:  func(p check.Problem) { fmt.Fprintln(os.Stderr, "damaged: "+p.String()) },
	})
	if res != nil {
		what := "structure"
		if *readData {
			what = fmt.Sprintf("structure and %s of data", cli.FormatBytes(uint64(res.BytesRead)))
		}
		fmt.Fprintf(os.Stderr, "checked %s: %d packs, %d points, %d tree parts, %d problems\n", what, res.Packs, res.Points, res.Trees, len(res.Problems))
	}
	if errors.Is(err, check.ErrDamaged) {
		return fmt.Errorf("%w: %d problems found", err, len(res.Problems))
	}
	return err
}
