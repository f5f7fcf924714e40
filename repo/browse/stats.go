package browse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/storage"
)

// MachineStats is what azfs stats shows of one machine (--json: this
// shape, stable; fields are only ever added).
type MachineStats struct {
	Machine string `json:"machine"`
	Points  int    `json:"points"`
	// StoredBytes is the size of every object of the machine's area:
	// packs, index, points, keys; DataBytes that of its packs alone.
	StoredBytes uint64 `json:"stored_bytes"`
	DataBytes   uint64 `json:"data_bytes"`
	Packs       int    `json:"packs"`
	// Bytes is the logical size of the files of all its points together:
	// what restoring each of them would write.
	Bytes uint64 `json:"bytes"`
	// DedupRatio is Bytes over DataBytes: how many times over the packs
	// would be needed without deduplication and compression (0 without
	// packs).
	DedupRatio float64    `json:"dedup_ratio"`
	Sets       []SetStats `json:"sets"`
}

// SetStats is one backup set of a machine.
type SetStats struct {
	// Set is the set's name, empty for the set of its paths (Paths).
	Set    string    `json:"set"`
	Paths  []string  `json:"paths"`
	Points int       `json:"points"`
	Latest time.Time `json:"latest"`
	// LatestBytes is the logical size of the newest point's files, Bytes
	// that of all the set's points together.
	LatestBytes uint64 `json:"latest_bytes"`
	Bytes       uint64 `json:"bytes"`
}

// Machine returns the statistics of a machine whose area is st and whose
// live points (oldest first) are points. It lists the area once and reads
// nothing else: the sizes come from the points' own statistics.
func Machine(ctx context.Context, name string, st storage.Storage, points []*repo.Point) (MachineStats, error) {
	m := MachineStats{Machine: name, Points: len(points), Sets: []SetStats{}}
	err := st.List(ctx, "", func(info storage.Info) error {
		m.StoredBytes += uint64(info.Size)
		if strings.HasPrefix(info.Name, "data/") {
			m.DataBytes += uint64(info.Size)
			m.Packs++
		}
		return nil
	})
	if err != nil {
		return MachineStats{}, fmt.Errorf("stats of machine %q: %w", name, err)
	}
	sets := map[string]int{}
	for _, p := range points {
		m.Bytes += p.Stats.Bytes
		i, ok := sets[p.Set()]
		if !ok {
			i = len(m.Sets)
			sets[p.Set()] = i
			s := SetStats{Set: p.SetName, Paths: sortedPaths(p.Paths)}
			m.Sets = append(m.Sets, s)
		}
		s := &m.Sets[i]
		s.Points++
		s.Bytes += p.Stats.Bytes
		if !p.Time.Before(s.Latest) {
			s.Latest, s.LatestBytes = p.Time.UTC(), p.Stats.Bytes
			if p.SetName != "" {
				s.Paths = sortedPaths(p.Paths)
			}
		}
	}
	if m.DataBytes > 0 {
		m.DedupRatio = float64(m.Bytes) / float64(m.DataBytes)
	}
	return m, nil
}

// sortedPaths returns a sorted copy of paths, [] for none.
func sortedPaths(paths []string) []string {
	out := append([]string{}, paths...)
	slices.Sort(out)
	return out
}

// VaultStats sums up the machines of a vault.
type VaultStats struct {
	// StoredBytes is the size of every object of the vault, the root's
	// own (config, key slots, credentials, policies) included.
	StoredBytes uint64         `json:"stored_bytes"`
	DataBytes   uint64         `json:"data_bytes"`
	Bytes       uint64         `json:"bytes"`
	DedupRatio  float64        `json:"dedup_ratio"`
	Machines    []MachineStats `json:"machines"`
}

// Vault sums up machines; root is the vault's storage, listed once for its
// total size.
func Vault(ctx context.Context, root storage.Storage, machines []MachineStats) (VaultStats, error) {
	v := VaultStats{Machines: machines}
	err := root.List(ctx, "", func(info storage.Info) error {
		v.StoredBytes += uint64(info.Size)
		return nil
	})
	if err != nil {
		return VaultStats{}, fmt.Errorf("stats of the vault: %w", err)
	}
	for _, m := range machines {
		v.DataBytes += m.DataBytes
		v.Bytes += m.Bytes
	}
	if v.DataBytes > 0 {
		v.DedupRatio = float64(v.Bytes) / float64(v.DataBytes)
	}
	return v, nil
}
