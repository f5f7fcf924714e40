// Package machines lists the machines of a vault for its owner ('azfs
// machines'): each one's name, when it registered, its newest live point
// and the state of its keys.
package machines

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/policy"
)

// Machine is one machine of a vault as its owner sees it.
type Machine struct {
	Name string
	// Registered is when the machine's area was created.
	Registered time.Time
	// LivePoints counts its points that are not forgotten and LastPoint is
	// the newest of them (nil: none); both are unknown (-1, nil) when
	// the owner cannot read its points (certificate mode) or they failed
	// to load (Problem says why).
	LivePoints int
	LastPoint  *repo.Point
	Keys       KeyState
	// Problem is why something above is unknown; empty when nothing is.
	Problem string
}

// KeyState is what keys open a machine's area.
type KeyState struct {
	// Slots counts the passphrase key slots that parse, Unparsable those
	// that do not (no passphrase opens them).
	Slots      int `json:"passphrase_slots"`
	Unparsable int `json:"unparsable_slots"`
	// Escrow says the owner opens the area through the key set the
	// machine escrowed to it.
	Escrow bool `json:"escrow"`
	// WriteOnly says the machine backs up to a certificate (certificate
	// mode): its own keys, and the escrow, read none of its points.
	WriteOnly bool `json:"write_only"`
}

// MarshalJSON gives the machine as 'azfs machines --json' lists it
// (docs/cli.md): live_points and last_point null when unknown, problem
// omitted when none.
func (m Machine) MarshalJSON() ([]byte, error) {
	out := struct {
		Name       string            `json:"name"`
		Registered time.Time         `json:"registered"`
		LivePoints *int              `json:"live_points"`
		LastPoint  *policy.LastPoint `json:"last_point"`
		Keys       KeyState          `json:"keys"`
		Problem    string            `json:"problem,omitempty"`
	}{Name: m.Name, Registered: m.Registered, Keys: m.Keys, Problem: m.Problem}
	if m.LivePoints >= 0 {
		out.LivePoints = &m.LivePoints
	}
	if m.LastPoint != nil {
		out.LastPoint = policy.VaultPoint(m.LastPoint)
	}
	return json.Marshal(out)
}

// List returns the machines of the vault root st (whose config is root,
// already checked against the owner keys the caller trusts), in name
// order, as owner sees them. What cannot be read of one machine is its
// Problem; only failing to list the machines is an error.
func List(ctx context.Context, root repo.Root, owner *keys.OwnerKeys) ([]Machine, error) {
	names, err := root.Machines(ctx)
	if err != nil {
		return nil, fmt.Errorf("list machines: %w", err)
	}
	out := make([]Machine, 0, len(names))
	for _, name := range names {
		out = append(out, describe(ctx, root, owner, name))
	}
	return out, nil
}

// describe reads what List says of machine name.
func describe(ctx context.Context, root repo.Root, owner *keys.OwnerKeys, name string) Machine {
	m := Machine{Name: name, LivePoints: -1}
	area := root.MachineStorage(name)
	var problems []string
	if cfg, err := repo.ReadConfig(ctx, area); err != nil {
		problems = append(problems, "config: "+err.Error())
	} else {
		m.Registered = cfg.Created
	}
	if all, unparsable, err := repo.KeySlots(ctx, area); err != nil {
		problems = append(problems, "key slots: "+err.Error())
	} else {
		m.Keys.Slots, m.Keys.Unparsable = len(all)-len(unparsable), len(unparsable)
	}
	v, err := root.OpenMachineAsOwner(ctx, name, owner)
	if err != nil {
		m.Problem = strings.Join(append(problems, "escrow: "+err.Error()), "; ")
		return m
	}
	m.Keys.Escrow = true
	if v.Keys().WriteOnly() {
		m.Keys.WriteOnly = true
		problems = append(problems, "certificate mode: its points open with the certificate's private key only")
	} else if s, err := policy.Load(ctx, policy.Machine{Root: root, Area: v}); err != nil {
		problems = append(problems, "points: "+err.Error())
	} else {
		live := s.Live()
		m.LivePoints = len(live)
		if len(live) > 0 {
			m.LastPoint = live[len(live)-1]
		}
	}
	if len(problems) > 0 {
		m.Problem = strings.Join(problems, "; ")
	}
	return m
}
