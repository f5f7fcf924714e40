// Package policy is the life cycle of recovery points: each machine's
// backup schedule and retention policy, set by the vault's owner, and soft
// deletion, by which forgotten points stay recoverable for a window before
// their data may be purged.
//
// # Objects
//
// A machine's policy is an owner-signed record machines/<name>/policy/<seq>
// ([Set], [Current]): the record with the highest <seq> whose signature
// verifies is the machine's policy; with none, the [Default] applies. The
// soft-delete window is vault-wide, an owner-signed record softdelete/<seq>
// in the root ([SetWindow], [Window]; 14 days by default). Neither is ever
// overwritten: a change adds the next <seq>.
//
// Points are forgotten in two ways, neither of which deletes anything:
//
//   - Retention ([ApplyRetention]): whoever can read a machine's points
//     (the machine itself, its passphrase, the owner's escrow, a
//     certificate's private key) applies the machine's policy and records
//     the points it forgot in one retention tombstone,
//     machines/<name>/tombstones/<id>, sealed under the area's index key
//     (repo.Area.SaveTombstone). Saving it needs only the right to create
//     objects, so a machine whose storage credentials may not delete or
//     overwrite (a blob vault's backup SAS) applies its own retention.
//   - The owner ([Forget], [Undelete]): an owner-signed record
//     machines/<name>/owner/<id> that forgets, or brings back, named points.
//
// # Who decides
//
// [Load] decides each point's fate, and every reader decides alike:
//
//   - The owner's records naming a point come first: the latest (by their
//     signed time) decides. A forget forgets the point; an undelete makes
//     it live and exempts it from retention from then on (only another
//     owner's forget removes it again), so that the policy does not forget
//     it again at its next application.
//   - Otherwise a point is forgotten when a tombstone names it and the
//     machine's current policy, applied at the tombstone's time to the
//     points of that time of the point's backup set (repo.Point.Set;
//     forgotten ones included), does not keep it. Retention applies to
//     each set apart, never across sets: a manual point of other paths is
//     not forgotten by the rules of the scheduled backups' set. A tombstone is a claim, checked by every reader: one that a
//     compromised machine, or anyone holding the area's keys, writes for a
//     point the owner's policy keeps is ignored, and stays ignored when the
//     point expires later (its window starts when an application forgets
//     it). Retention is monotone (package repo/retention): what an honest
//     application forgot among the points it saw is forgotten among the
//     points of its time. Lengthening the retention brings points back that
//     the shorter one forgot, until they are purged.
//
// A tombstone's time is the later of the time it claims and the time the
// storage says it was saved (storage.Info.Modified): a machine cannot
// backdate it.
//
// A forgotten point is hidden from listings, mounts and retention counting.
// It becomes purgeable a window after it was forgotten: after the owner's
// signed time, or its first tombstone's time. Purging
// (deleting points and then their data) is package repo/prune's, through
// [State.Purgeable].
package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/azfs/azfs/internal/errkind"
	"github.com/azfs/azfs/keys"
	"github.com/azfs/azfs/repo"
	"github.com/azfs/azfs/repo/retention"
	"github.com/azfs/azfs/repo/selection"
	"github.com/azfs/azfs/repo/signed"
	"github.com/azfs/azfs/repo/storage"
)

// Policy is a machine's backup schedules and retention: default rules,
// and rules of its own for each backup set named in Sets.
type Policy struct {
	Machine string
	// Seq is the policy's number among the machine's policies; 0 for the
	// default, which is not stored.
	Seq int
	// Set is when the owner set it; zero for the default.
	Set time.Time
	// TimeZone is the IANA name ("Europe/Berlin", "UTC") of the zone in
	// which the schedules' times of day and retention's hours, days,
	// weeks, months and years are taken.
	TimeZone string
	// Schedule and Retention are the default rules: those of every backup
	// set without an entry in Sets (the agent's own paths, manual backups
	// of other paths or of sets the policy does not name).
	Schedule  Schedule
	Retention retention.Retention
	// Sets are the backup sets with rules of their own, by name
	// (repo.Point.SetName), in the order the owner added them.
	Sets []SetPolicy
}

// SetPolicy is the rules of one backup set: what the agent backs up for
// it and when, and which of its points retention keeps.
type SetPolicy struct {
	// Name is the set's name ('azfs backup --set NAME'): its points are
	// those whose repo.Point.SetName it is.
	Name string
	// Paths are the absolute paths on the machine that the agent backs up
	// for the set, and FilesFrom glob patterns (the lines of a
	// --files-from list) that it expands there at each backup and backs
	// up too. With neither, the agent runs no backup of the set: only its
	// retention applies (to points made with 'azfs backup --set NAME').
	Paths     []string
	FilesFrom []string
	// Selection is what the set's backups leave out.
	Selection selection.Spec
	Schedule  Schedule
	Retention retention.Retention
}

// Scheduled reports whether the agent backs the set up: it has paths.
func (sp SetPolicy) Scheduled() bool { return len(sp.Paths) > 0 || len(sp.FilesFrom) > 0 }

// BackupPaths returns what a backup of the set backs up, on the machine
// it runs on: its Paths, then what its FilesFrom patterns match there, as
// the lines of a --files-from list (selection.Lines); warn is told about a
// pattern that matches nothing.
func (sp SetPolicy) BackupPaths(warn func(msg string)) ([]string, error) {
	paths := slices.Clone(sp.Paths)
	if len(sp.FilesFrom) == 0 {
		return paths, nil
	}
	matched, err := selection.ReadList(strings.NewReader(strings.Join(sp.FilesFrom, "\n")), "the files-from patterns of set "+sp.Name, selection.Lines, warn)
	if err != nil {
		return nil, err
	}
	return append(paths, matched...), nil
}

// validate checks the set's name, paths, selection, schedule and
// retention.
func (sp SetPolicy) validate() error {
	if err := repo.CheckSetName(sp.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	for _, p := range sp.Paths {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsRune(p, 0) {
			return fmt.Errorf("%w: set %s: path %q: give an absolute, clean path", ErrPolicy, sp.Name, p)
		}
	}
	for _, p := range sp.FilesFrom {
		if _, err := filepath.Match(p, ""); err != nil || p == "" || strings.ContainsRune(p, 0) {
			return fmt.Errorf("%w: set %s: files-from pattern %q is malformed", ErrPolicy, sp.Name, p)
		}
	}
	if _, err := sp.Selection.Selection(); err != nil {
		return fmt.Errorf("%w: set %s: %w", ErrPolicy, sp.Name, err)
	}
	if err := sp.Schedule.Validate(); err != nil {
		return fmt.Errorf("set %s: %w", sp.Name, err)
	}
	if err := sp.Retention.Validate(); err != nil {
		return fmt.Errorf("%w: set %s: %w", ErrPolicy, sp.Name, err)
	}
	return nil
}

// Default returns the policy of a machine the owner set none for: a backup
// every 12 hours; the last point of each of 14 days, 8 weeks, 12 months and
// 3 years; days in UTC.
func Default(machine string) Policy {
	return Policy{
		Machine:   machine,
		TimeZone:  "UTC",
		Schedule:  Schedule{Every: 12 * time.Hour},
		Retention: retention.Retention{KeepDaily: 14, KeepWeekly: 8, KeepMonthly: 12, KeepYearly: 3},
	}
}

// IsDefault reports whether p is the default, not a stored policy.
func (p Policy) IsDefault() bool { return p.Seq == 0 }

// ErrPolicy reports a policy that is not valid.
var ErrPolicy = errkind.New(errkind.Invalid, "invalid policy")

// Validate checks the time zone, the default schedule and retention, and
// each set's entry; set names must differ.
func (p Policy) Validate() error {
	if _, err := p.Location(); err != nil {
		return err
	}
	if err := p.Schedule.Validate(); err != nil {
		return err
	}
	if err := p.Retention.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	seen := make(map[string]bool, len(p.Sets))
	for _, sp := range p.Sets {
		if err := sp.validate(); err != nil {
			return err
		}
		if seen[sp.Name] {
			return fmt.Errorf("%w: set %s is named twice", ErrPolicy, sp.Name)
		}
		seen[sp.Name] = true
	}
	return nil
}

// Entry returns the entry of the set named name, and false when the
// policy has none (the set follows the default rules).
func (p Policy) Entry(name string) (SetPolicy, bool) {
	for _, sp := range p.Sets {
		if sp.Name == name {
			return sp, true
		}
	}
	return SetPolicy{}, false
}

// EntryOrDefault returns the entry of the set named name, or, when the
// policy has none, a new entry with the default schedule and retention
// and no paths: the rules the set follows today.
func (p Policy) EntryOrDefault(name string) SetPolicy {
	if sp, ok := p.Entry(name); ok {
		return sp
	}
	return SetPolicy{Name: name, Schedule: p.Schedule, Retention: p.Retention}
}

// WithEntry returns p with sp as the entry of set sp.Name, replacing the
// one it has or added after the others.
func (p Policy) WithEntry(sp SetPolicy) Policy {
	p.Sets = slices.Clone(p.Sets)
	for i := range p.Sets {
		if p.Sets[i].Name == sp.Name {
			p.Sets[i] = sp
			return p
		}
	}
	p.Sets = append(p.Sets, sp)
	return p
}

// DescribeRetention describes the default retention and each set's own,
// as "keep daily 14, weekly 8; set etc: keep last 2".
func (p Policy) DescribeRetention() string {
	parts := []string{p.Retention.String()}
	for _, sp := range p.Sets {
		parts = append(parts, "set "+sp.Name+": "+sp.Retention.String())
	}
	return strings.Join(parts, "; ")
}

// RetentionOf returns the retention of the backup set whose key is set
// (repo.Point.Set): its entry's, else the default.
func (p Policy) RetentionOf(set string) retention.Retention {
	if sp, ok := p.Entry(set); ok {
		return sp.Retention
	}
	return p.Retention
}

// Location returns the policy's time zone.
func (p Policy) Location() (*time.Location, error) {
	if p.TimeZone == "" || p.TimeZone == "Local" {
		return nil, fmt.Errorf("%w: time zone %q: name one, such as Europe/Berlin or UTC", ErrPolicy, p.TimeZone)
	}
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("%w: time zone %q: %w", ErrPolicy, p.TimeZone, err)
	}
	return loc, nil
}

// Shortens describes each rule in which next's retention is shorter than
// p's, whatever points there are (retention.Retention.Lowered), for the
// default rules and for each set either names ("set db: daily 7 to 3"),
// a set without an entry taking the default rules: it forgets everything
// p keeps everything, it lowers a count (to 0 too, which drops the rule),
// or it lowers keep-within. Such a change is an owner's deletion and
// needs the security PIN; so does any change that forgets points p keeps
// today, which the caller checks against the points (State.Compare).
func (p Policy) Shortens(next Policy) []string {
	out := p.Retention.Lowered(next.Retention)
	var names []string
	for _, sp := range append(slices.Clone(p.Sets), next.Sets...) {
		if !slices.Contains(names, sp.Name) {
			names = append(names, sp.Name)
		}
	}
	for _, name := range names {
		for _, rule := range p.RetentionOf(name).Lowered(next.RetentionOf(name)) {
			out = append(out, "set "+name+": "+rule)
		}
	}
	return out
}

// policyContext is the signature context of policy records.
const policyContext = "policy"

// policyPrefix holds a machine's policies, in its area.
const policyPrefix = "policy/"

// Versions of the policy record. A version 1 record (written by azfs
// before backup sets had rules of their own, and by this one for a policy
// without set entries, so that an older agent keeps reading it) has no
// "version" field and holds the default rules in "schedule" and
// "retention". A version 2 record holds them, and each set's, in "sets",
// the default's entry named "": an older azfs finds no schedule in it and
// refuses it, rather than apply the default rules to every set.
const (
	policyVersion1 = 1
	policyVersion2 = 2
)

// policyRecord is the body of machines/<name>/policy/<seq>.
type policyRecord struct {
	Version   int              `json:"version,omitempty"` // absent: 1
	Vault     string           `json:"vault"`
	Machine   string           `json:"machine"`
	Seq       int              `json:"seq"`
	Time      time.Time        `json:"time"`
	TimeZone  string           `json:"timezone"`
	Schedule  *scheduleRecord  `json:"schedule,omitempty"`  // version 1
	Retention *retentionRecord `json:"retention,omitempty"` // version 1
	Sets      []setRecord      `json:"sets,omitempty"`      // version 2
}

// setRecord is one entry of a version 2 record: the default's (Name "",
// no paths or selection) or a set's.
type setRecord struct {
	Name      string           `json:"name"`
	Paths     []string         `json:"paths,omitempty"`
	FilesFrom []string         `json:"files_from,omitempty"`
	Selection *selectionRecord `json:"selection,omitempty"`
	Schedule  scheduleRecord   `json:"schedule"`
	Retention retentionRecord  `json:"retention"`
}

type selectionRecord struct {
	Exclude          []string `json:"exclude,omitempty"`
	IExclude         []string `json:"iexclude,omitempty"`
	ExcludeCaches    bool     `json:"exclude_caches,omitempty"`
	ExcludeIfPresent []string `json:"exclude_if_present,omitempty"`
	LargerThan       int64    `json:"exclude_larger_than,omitempty"` // bytes
	OneFileSystem    bool     `json:"one_file_system,omitempty"`
	IncludeFS        []string `json:"include_fs,omitempty"`
}

type scheduleRecord struct {
	Every int64    `json:"every,omitempty"` // seconds
	At    []string `json:"at,omitempty"`    // "HH:MM"
}

type retentionRecord struct {
	Last    int   `json:"last"`
	Hourly  int   `json:"hourly"`
	Daily   int   `json:"daily"`
	Weekly  int   `json:"weekly"`
	Monthly int   `json:"monthly"`
	Yearly  int   `json:"yearly"`
	Within  int64 `json:"within"` // seconds
}

func (p Policy) record(vault string) policyRecord {
	rec := policyRecord{Vault: vault, Machine: p.Machine, Seq: p.Seq, Time: p.Set.UTC(), TimeZone: p.TimeZone}
	if len(p.Sets) == 0 {
		sch, ret := encodeSchedule(p.Schedule), encodeRetention(p.Retention)
		rec.Schedule, rec.Retention = &sch, &ret
		return rec
	}
	rec.Version = policyVersion2
	rec.Sets = append(rec.Sets, setRecord{Schedule: encodeSchedule(p.Schedule), Retention: encodeRetention(p.Retention)})
	for _, sp := range p.Sets {
		sr := setRecord{Name: sp.Name, Paths: sp.Paths, FilesFrom: sp.FilesFrom, Schedule: encodeSchedule(sp.Schedule), Retention: encodeRetention(sp.Retention)}
		if sel := sp.Selection; !sel.IsZero() {
			sr.Selection = &selectionRecord{Exclude: sel.Exclude, IExclude: sel.IExclude, ExcludeCaches: sel.ExcludeCaches,
				ExcludeIfPresent: sel.ExcludeIfPresent, LargerThan: sel.LargerThan, OneFileSystem: sel.OneFileSystem, IncludeFS: sel.IncludeFS}
		}
		rec.Sets = append(rec.Sets, sr)
	}
	return rec
}

func encodeSchedule(s Schedule) scheduleRecord {
	var rec scheduleRecord
	if len(s.At) > 0 {
		for _, t := range s.At {
			rec.At = append(rec.At, t.String())
		}
	} else {
		rec.Every = int64(s.Every / time.Second)
	}
	return rec
}

func encodeRetention(r retention.Retention) retentionRecord {
	return retentionRecord{Last: r.KeepLast, Hourly: r.KeepHourly, Daily: r.KeepDaily, Weekly: r.KeepWeekly,
		Monthly: r.KeepMonthly, Yearly: r.KeepYearly, Within: int64(r.KeepWithin / time.Second)}
}

// maxSeconds is the longest duration a record may give, in seconds.
const maxSeconds = int64(1<<63-1) / int64(time.Second)

func (rec scheduleRecord) schedule() (Schedule, error) {
	if rec.Every < 0 || rec.Every > maxSeconds {
		return Schedule{}, fmt.Errorf("%w: a duration is out of range", ErrPolicy)
	}
	s := Schedule{Every: time.Duration(rec.Every) * time.Second}
	for _, text := range rec.At {
		t, err := ParseTimeOfDay(text)
		if err != nil {
			return Schedule{}, err
		}
		s.At = append(s.At, t)
	}
	return s, nil
}

func (rec retentionRecord) retention() (retention.Retention, error) {
	if rec.Within < 0 || rec.Within > maxSeconds {
		return retention.Retention{}, fmt.Errorf("%w: a duration is out of range", ErrPolicy)
	}
	return retention.Retention{KeepLast: rec.Last, KeepHourly: rec.Hourly, KeepDaily: rec.Daily, KeepWeekly: rec.Weekly,
		KeepMonthly: rec.Monthly, KeepYearly: rec.Yearly, KeepWithin: time.Duration(rec.Within) * time.Second}, nil
}

// rules decodes a schedule and a retention.
func rules(sch scheduleRecord, ret retentionRecord) (Schedule, retention.Retention, error) {
	s, err := sch.schedule()
	if err != nil {
		return Schedule{}, retention.Retention{}, err
	}
	r, err := ret.retention()
	return s, r, err
}

// policy returns the policy a record holds, unvalidated.
func (rec policyRecord) policy() (Policy, error) {
	p := Policy{Machine: rec.Machine, Seq: rec.Seq, Set: rec.Time, TimeZone: rec.TimeZone}
	var err error
	switch rec.Version {
	case 0, policyVersion1:
		if rec.Schedule == nil || rec.Retention == nil || rec.Sets != nil {
			return Policy{}, fmt.Errorf("%w: a version 1 record holds a schedule and a retention, and no sets", ErrPolicy)
		}
		p.Schedule, p.Retention, err = rules(*rec.Schedule, *rec.Retention)
		return p, err
	case policyVersion2:
	default:
		return Policy{}, fmt.Errorf("%w: record version %d (written by a later azfs?)", ErrPolicy, rec.Version)
	}
	if rec.Schedule != nil || rec.Retention != nil || len(rec.Sets) == 0 || rec.Sets[0].Name != "" {
		return Policy{}, fmt.Errorf("%w: a version 2 record holds its rules in sets, the default's first", ErrPolicy)
	}
	def := rec.Sets[0]
	if len(def.Paths) > 0 || len(def.FilesFrom) > 0 || def.Selection != nil {
		return Policy{}, fmt.Errorf("%w: the default rules name paths or a selection", ErrPolicy)
	}
	if p.Schedule, p.Retention, err = rules(def.Schedule, def.Retention); err != nil {
		return Policy{}, err
	}
	for _, sr := range rec.Sets[1:] {
		sp := SetPolicy{Name: sr.Name, Paths: nonEmpty(sr.Paths), FilesFrom: nonEmpty(sr.FilesFrom)}
		if sel := sr.Selection; sel != nil {
			sp.Selection = selection.Spec{Exclude: nonEmpty(sel.Exclude), IExclude: nonEmpty(sel.IExclude), ExcludeCaches: sel.ExcludeCaches,
				ExcludeIfPresent: nonEmpty(sel.ExcludeIfPresent), LargerThan: sel.LargerThan, OneFileSystem: sel.OneFileSystem, IncludeFS: nonEmpty(sel.IncludeFS)}
		}
		if sp.Schedule, sp.Retention, err = rules(sr.Schedule, sr.Retention); err != nil {
			return Policy{}, err
		}
		p.Sets = append(p.Sets, sp)
	}
	return p, nil
}

// nonEmpty returns s, nil when empty: a record's "paths": [] is no paths.
func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// ErrElsewhere reports a signed record that names another vault, machine
// or number than where it is stored: one the owner signed for there,
// copied here. Readers skip it.
var ErrElsewhere = errkind.New(errkind.Damaged, "record signed for another place")

// DecodePolicy parses the body of a policy record (its signature checked
// by the caller) of machine in the vault vaultID, stored under seq. A body
// naming another vault, machine or number is ErrElsewhere; one that does
// not decode or validate, ErrPolicy.
func DecodePolicy(body []byte, vaultID, machine string, seq int) (Policy, error) {
	var rec policyRecord
	if err := json.Unmarshal(body, &rec); err != nil {
		return Policy{}, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if rec.Vault != vaultID || rec.Machine != machine || rec.Seq != seq {
		return Policy{}, fmt.Errorf("%w: it names vault %q, machine %q, number %d", ErrElsewhere, rec.Vault, rec.Machine, rec.Seq)
	}
	if rec.Time.IsZero() {
		return Policy{}, fmt.Errorf("%w: no time", ErrPolicy)
	}
	p, err := rec.policy()
	if err != nil {
		return Policy{}, err
	}
	return p, p.Validate()
}

// seqName is the name of record number seq under prefix: at least six
// decimal digits.
func seqName(prefix string, seq int) string { return fmt.Sprintf("%s%06d", prefix, seq) }

// parseSeq returns the number of a record name under prefix, which must be
// written as seqName writes it.
func parseSeq(prefix, name string) (int, bool) {
	s, ok := strings.CutPrefix(name, prefix)
	if !ok || len(s) < 6 || len(s) > 18 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || seqName(prefix, n) != name {
		return 0, false
	}
	return n, true
}

// listSeqs returns the record numbers under prefix, highest first.
func listSeqs(ctx context.Context, st storage.Storage, prefix string) ([]int, error) {
	var seqs []int
	err := st.List(ctx, prefix, func(fi storage.Info) error {
		if n, ok := parseSeq(prefix, fi.Name); ok {
			seqs = append(seqs, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	slices.Sort(seqs)
	slices.Reverse(seqs)
	return seqs, nil
}

// Current returns the policy of machine name in the vault root st (whose
// config is root, with the owner keys the caller trusts): the stored policy
// with the highest number that the owner signed, or the default when there
// is none. Records the owner did not sign, and signed ones copied from
// another machine, vault or number, are skipped. A signed one that
// does not decode or validate (written by a later azfs, say) is an error
// wrapping ErrPolicy, not a reason to fall back to an older policy, which
// may keep less.
func Current(ctx context.Context, root repo.Root, name string) (Policy, error) {
	if root.Owner == nil {
		return Policy{}, repo.ErrNotOwnerVault
	}
	area := root.MachineStorage(name)
	seqs, err := listSeqs(ctx, area, policyPrefix)
	if err != nil {
		return Policy{}, fmt.Errorf("policy of %s: %w", name, err)
	}
	for _, seq := range seqs {
		var rec json.RawMessage
		err := signed.Load(ctx, area, seqName(policyPrefix, seq), *root.Owner, policyContext, &rec)
		if errors.Is(err, repo.ErrDamaged) || errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return Policy{}, fmt.Errorf("policy of %s: %w", name, err)
		}
		p, err := DecodePolicy(rec, root.ID, name, seq)
		if errors.Is(err, ErrElsewhere) {
			continue
		}
		if err != nil {
			return Policy{}, fmt.Errorf("policy %d of %s, signed by the owner: %w", seq, name, err)
		}
		return p, nil
	}
	return Default(name), nil
}

// Set stores p as machine p.Machine's policy, signed by owner, under the
// next free number, and returns it as stored (with its number and time).
// It checks that the machine is registered and that p is valid; the
// caller decides beforehand whether the change needs the security PIN
// (Shortens, State.Expired).
func Set(ctx context.Context, root repo.Root, owner *keys.OwnerKeys, p Policy, now time.Time) (Policy, error) {
	if err := root.CheckOwner(owner); err != nil {
		return Policy{}, fmt.Errorf("set policy: %w", err)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	if ok, err := root.MachineExists(ctx, p.Machine); err != nil {
		return Policy{}, err
	} else if !ok {
		return Policy{}, fmt.Errorf("set policy: %w", root.NoMachine(ctx, p.Machine))
	}
	area := root.MachineStorage(p.Machine)
	p.Set = now.UTC()
	err := saveNext(ctx, area, policyPrefix, func(seq int) error {
		p.Seq = seq
		return signed.Save(ctx, area, seqName(policyPrefix, seq), owner, policyContext, p.record(root.ID))
	})
	if err != nil {
		return Policy{}, fmt.Errorf("set policy of %s: %w", p.Machine, err)
	}
	return p, nil
}

// saveNext calls save with the number after the highest under prefix,
// again when another writer took it meanwhile.
func saveNext(ctx context.Context, st storage.Storage, prefix string, save func(seq int) error) error {
	for range 5 {
		seqs, err := listSeqs(ctx, st, prefix)
		if err != nil {
			return err
		}
		next := 1
		if len(seqs) > 0 {
			next = seqs[0] + 1
		}
		if err := save(next); !errors.Is(err, storage.ErrExists) {
			return err
		}
	}
	return errors.New("another writer keeps taking the next number: run it again")
}
