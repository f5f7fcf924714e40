package repair

import (
	"encoding/json"

	"github.com/azfs/azfs/keys"

	"github.com/azfs/azfs/repo/check"
)

// The JSON of the reports is 'azfs repair --json' (docs/cli.md): every
// list is [] when empty, IDs are hex, errors their messages.

// MarshalJSON gives the report as 'azfs repair --json' lists a machine.
func (r *AreaReport) MarshalJSON() ([]byte, error) {
	type object struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	}
	out := struct {
		Machine    string          `json:"machine"`
		Applied    bool            `json:"applied"`
		Config     *ConfigReport   `json:"config"`
		Skipped    string          `json:"skipped,omitempty"`
		Slots      []string        `json:"key_slots"`
		Unparsable []string        `json:"key_slots_unparsable"`
		NewSlot    bool            `json:"new_key_slot"`
		Index      *IndexReport    `json:"index,omitempty"`
		Junk       []Moved         `json:"junk"`
		Quarantine []object        `json:"quarantine"`
		Unchecked  string          `json:"unchecked,omitempty"`
		Problems   []check.Problem `json:"problems"`
	}{Machine: r.Machine, Applied: r.Applied, Config: r.Config, Skipped: r.Skipped,
		Slots: nonNil(r.Slots), Unparsable: nonNil(r.Unparsable), NewSlot: r.NewSlot, Index: r.Index,
		Junk: nonNil(r.Junk), Quarantine: []object{}, Problems: nonNil(r.Problems)}
	for _, fi := range r.Quarantine {
		out.Quarantine = append(out.Quarantine, object{fi.Name, fi.Size})
	}
	if r.Unchecked != nil {
		out.Unchecked = r.Unchecked.Error()
	}
	return json.Marshal(out)
}

// MarshalJSON gives the report as 'azfs repair --json' gives a machine's
// index: the stale files by ID.
func (x *IndexReport) MarshalJSON() ([]byte, error) {
	out := struct {
		Packs           int       `json:"packs"`
		Files           int       `json:"index_files"`
		Covered         int       `json:"covered"`
		Written         keys.ID   `json:"written,omitzero"`
		Stale           []keys.ID `json:"stale"`
		DamagedTrailers []keys.ID `json:"damaged_trailers"`
		Unindexed       []keys.ID `json:"unindexed"`
	}{x.Packs, x.Files, x.Covered, x.Written, []keys.ID{}, nonNil(x.DamagedTrailers), nonNil(x.Unindexed)}
	for _, s := range x.Stale {
		out.Stale = append(out.Stale, s.ID)
	}
	return json.Marshal(out)
}

// MarshalJSON gives a junk object as 'azfs repair --json' lists it.
func (m Moved) MarshalJSON() ([]byte, error) {
	why := ""
	if m.Why != nil {
		why = m.Why.Error()
	}
	return json.Marshal(struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
		Why  string `json:"why"`
		To   string `json:"to,omitempty"`
	}{m.Name, m.Size, why, m.To})
}

// nonNil returns s, or an empty slice for nil: [] in JSON.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
