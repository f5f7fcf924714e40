package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/azfs/azfs/repo/backup"
)

// ShowProgress redraws one status line on w every interval until stop is
// closed, then clears it.
func ShowProgress(w io.Writer, p *backup.Progress, interval time.Duration, stop <-chan struct{}) {
	start := time.Now()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			fmt.Fprint(w, "\r\033[K")
			return
		case <-t.C:
			fmt.Fprint(w, "\r\033[K"+progressLine(p, time.Since(start)))
		}
	}
}

func progressLine(p *backup.Progress, elapsed time.Duration) string {
	done := p.BytesDone.Load()
	rate := float64(done) / max(elapsed.Seconds(), 0.001)
	line := fmt.Sprintf("[%s] %d files, %s, %s/s", elapsed.Truncate(time.Second), p.Files.Load(), FormatBytes(done), FormatBytes(uint64(rate)))
	if total := p.TotalBytes.Load(); p.ScanDone.Load() && total > 0 {
		pct := min(100, float64(done)*100/float64(total))
		line += fmt.Sprintf(" of %s (%.0f%%)", FormatBytes(total), pct)
		if rate > 0 && done < total {
			eta := time.Duration(float64(total-done) / rate * float64(time.Second))
			line += fmt.Sprintf(", ETA %s", eta.Truncate(time.Second))
		}
	}
	if e := p.Errors.Load(); e > 0 {
		line += fmt.Sprintf(", %d errors", e)
	}
	return line
}
