package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/azfs/azfs/cmd/internal/cli"
	"github.com/azfs/azfs/repo/check"
)

func pointsCmd(ctx context.Context, args []string) error {
	fs := flags("points")
	target := addTargetFlags(fs, true)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, err := cli.OpenVault(ctx, target.target())
	if err != nil {
		return err
	}
	points, err := o.Points(ctx, func(msg string) { fmt.Fprintln(os.Stderr, "azfs: warning: "+msg) })
	if err != nil {
		return err
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
	target := addTargetFlags(fs, true)
	readData := fs.Bool("read-data", false, "read and authenticate every stored byte")
	if err := parse(fs, args); err != nil {
		return err
	}
	o, err := cli.OpenVault(ctx, target.target())
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
		if res.Unreadable > 0 {
			fmt.Fprintf(os.Stderr, "%d blobs are sealed for another certificate and were not read: check with that certificate's private key too\n", res.Unreadable)
		}
	}
	if errors.Is(err, check.ErrDamaged) {
		return fmt.Errorf("%w: %d problems found", err, len(res.Problems))
	}
	return err
}
