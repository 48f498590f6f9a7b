package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/lifeboat-dev/lifeboat/internal/fsync"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/snapkit/datadir"
)

// Errors of Apply.
var (
	// ErrBadPlan means the plan file is not one Apply can trust: another
	// version, edited since it was made, or loss not accepted.
	ErrBadPlan = errors.New("restore: bad plan")
	// ErrCheckFailed means a new member's data dir is not what the plan
	// expects.
	ErrCheckFailed = errors.New("restore: check failed")
	// ErrAnswering means an old member still answers on its client URL.
	ErrAnswering = errors.New("restore: an old member still answers on its client URL")
)

// ReadPlan reads a plan file and checks its version and ID.
func ReadPlan(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadPlan, path, err)
	}
	if p.Version != PlanVersion {
		return nil, fmt.Errorf("%w: %s: version %d, want %d", ErrBadPlan, path, p.Version, PlanVersion)
	}
	if p.ID != p.digest() {
		return nil, fmt.Errorf("%w: %s was changed after it was made (ID %s, content %s); make a new plan", ErrBadPlan, path, p.ID, p.digest())
	}
	if p.KeepSet != nil {
		if err := p.readKeepSet(KeepSetPath(path)); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// readKeepSet reads the plan's keep set file, which must be the one the
// plan records. None is no error: apply then walks the source twice.
func (p *Plan) readKeepSet(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != p.KeepSet.SHA256 {
		return fmt.Errorf("%w: %s is not the plan's keep set (SHA-256 %x, the plan records %s); remove it, or make a new plan",
			ErrBadPlan, path, sum, p.KeepSet.SHA256)
	}
	var k snapkit.KeepSet
	if err := k.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadPlan, path, err)
	}
	p.keep = &k
	return nil
}

// WritePlan writes p to path, and its keep set (if any) to
// KeepSetPath(path) first: each a temporary file, synced, renamed.
func WritePlan(p *Plan, path string) error {
	if p.keep != nil {
		kb, err := p.keep.MarshalBinary()
		if err != nil {
			return err
		}
		if err := writeFileAtomic(KeepSetPath(path), kb); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic writes data to path through a synced temporary file
// renamed into place, then syncs the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = fsync.Data(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("restore: write %s: %w", path, err)
	}
	return syncDir(dir)
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Members are the names to apply on this node; nil means all.
	Members []string
	// Force goes on although a dir is in use or an old member answers.
	Force bool
}

// ApplyResult says what Apply did, per member.
type ApplyResult struct {
	PlanID  string         `json:"planID"`
	Members []MemberResult `json:"members"`
}

// MemberResult is one member's steps as applied.
type MemberResult struct {
	Name  string       `json:"name"`
	State string       `json:"state"` // the completion record's path
	Steps []StepRecord `json:"steps"`
	// ToDo are the steps left to the operator, with their commands.
	ToDo []Step `json:"toDo"`
}

// StepRecord is the completion record of one step.
type StepRecord struct {
	Name   string    `json:"name"`
	Done   bool      `json:"done"`
	At     time.Time `json:"at,omitzero"`
	Detail string    `json:"detail"`
	// Now says the step was carried out by this run (not found done).
	Now bool `json:"now"`
}

// memberState is the completion record file of one member.
type memberState struct {
	PlanID string       `json:"planID"`
	Member string       `json:"member"`
	Steps  []StepRecord `json:"steps"`
}

// statePath is the completion record of a member: beside its data dir,
// so that it survives the dir being moved aside and written again.
func statePath(p *Plan, m PlanMember) string {
	return filepath.Join(filepath.Dir(m.DataDir), "."+filepath.Base(m.DataDir)+".restore-"+p.ID+".json")
}

// Apply carries out the plan's automatic steps for the chosen members, each
// member's in order, recording each step's completion so that a run stopped at any
// point (a kill included) and run again ends in the same state. Every step
// first checks whether it is done already. The old data dir is renamed,
// never deleted; the new one is built in a temporary dir and renamed.
// Members are applied one after another in the plan's order until one is
// restored from the plan's source and checked; the members after it copy
// that db, and are applied together.
func Apply(ctx context.Context, lg *slog.Logger, p *Plan, o ApplyOptions) (*ApplyResult, error) {
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if (p.Loss.Entries > 0 || p.Loss.Revisions > 0) && !p.Loss.Accepted {
		return nil, fmt.Errorf("%w: it loses data and the loss was not accepted", ErrBadPlan)
	}
	for _, name := range o.Members {
		if !slices.ContainsFunc(p.Members, func(m PlanMember) bool { return m.Name == name }) {
			return nil, usageErr("the plan has no member %q", name)
		}
	}
	res := &ApplyResult{PlanID: p.ID}
	var chosen []PlanMember
	for _, m := range p.Members {
		if o.Members == nil || slices.Contains(o.Members, m.Name) {
			chosen = append(chosen, m)
		}
	}
	var sib sibling
	for len(chosen) > 0 && sib.checked == "" {
		m := chosen[0]
		chosen = chosen[1:]
		mr, err := applyMember(ctx, lg, p, m, o, &sib)
		if mr != nil {
			res.Members = append(res.Members, *mr)
		}
		if err != nil {
			return res, fmt.Errorf("member %s: %w", m.Name, err)
		}
		// Its check step, after the write, passed.
		sib.checked = sib.restored
	}
	// The members left copy the checked db (or find their dir written
	// already): nothing of one depends on another, so they run together,
	// as many at once as there are CPUs (a copy's SHA-256 check is CPU).
	results := make([]*MemberResult, len(chosen))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, m := range chosen {
		g.Go(func() error {
			mr, err := applyMember(gctx, lg, p, m, o, &sib)
			results[i] = mr
			if err != nil {
				return fmt.Errorf("member %s: %w", m.Name, err)
			}
			return nil
		})
	}
	err := g.Wait()
	for _, mr := range results {
		if mr != nil {
			res.Members = append(res.Members, *mr)
		}
	}
	return res, err
}

// sibling is, within one Apply, the db of the first member that this run
// restored from the plan's source: restored once its write step wrote it,
// checked once its check step passed too. The members after it copy the
// checked one. A db found written already (by an earlier run, perhaps
// started since) is never copied. known is what the check of the first
// found, with the SHA-256 of its bytes: the check of a member whose db
// this run copied (a data dir in copies) takes the db's state from it when
// the copy has the same SHA-256, instead of reading it again.
type sibling struct {
	restored, checked string
	known             *knownDB

	mu     sync.Mutex // copies is written by members applied together
	copies []string
}

func (sib *sibling) copied(dir string) {
	sib.mu.Lock()
	defer sib.mu.Unlock()
	sib.copies = append(sib.copies, dir)
}

func (sib *sibling) isCopy(dir string) bool {
	sib.mu.Lock()
	defer sib.mu.Unlock()
	return slices.Contains(sib.copies, dir)
}

func applyMember(ctx context.Context, lg *slog.Logger, p *Plan, m PlanMember, o ApplyOptions, sib *sibling) (*MemberResult, error) {
	path := statePath(p, m)
	st, err := readState(path)
	if err != nil {
		return nil, err
	}
	st.PlanID, st.Member = p.ID, m.Name
	mr := &MemberResult{Name: m.Name, State: path}
	for _, step := range m.Steps {
		if !step.Auto {
			mr.ToDo = append(mr.ToDo, step)
			continue
		}
		rec := st.find(step.Name)
		if rec != nil && rec.Done && step.Name != "check" {
			mr.Steps = append(mr.Steps, *rec)
			continue
		}
		detail, err := runStep(ctx, lg, p, m, step, o, sib)
		if err != nil {
			return mr, fmt.Errorf("step %s: %w", step.Name, err)
		}
		r := StepRecord{Name: step.Name, Done: true, At: time.Now().UTC(), Detail: detail, Now: true}
		st.set(r)
		if err := st.write(path); err != nil {
			return mr, err
		}
		lg.Info("restore step done", "member", m.Name, "step", step.Name, "detail", detail)
		mr.Steps = append(mr.Steps, r)
	}
	return mr, nil
}

// readState reads a member's completion record; none yet is empty.
func readState(path string) (*memberState, error) {
	st := &memberState{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("restore: completion record %s: %w", path, err)
	}
	return st, nil
}

func (st *memberState) find(name string) *StepRecord {
	for i := range st.Steps {
		if st.Steps[i].Name == name {
			return &st.Steps[i]
		}
	}
	return nil
}

func (st *memberState) set(r StepRecord) {
	r.Now = false
	if old := st.find(r.Name); old != nil {
		*old = r
		return
	}
	st.Steps = append(st.Steps, r)
}

func (st *memberState) write(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// runStep carries out one step, or finds it done, and says what it found.
// A member restored from the plan's source copies sib.checked instead, if
// set: the db of another member that this run restored and checked; else
// it sets sib.restored to the db it restored.
func runStep(ctx context.Context, lg *slog.Logger, p *Plan, m PlanMember, step Step, o ApplyOptions, sib *sibling) (string, error) {
	dir, moved := m.DataDir, aside(m.DataDir, p)
	switch step.Name {
	case "fence":
		if exists(moved) {
			return "the old dir is moved aside already", nil
		}
		if !o.Force {
			if l, err := datadir.Locate(dir); err == nil {
				var r MemberReport
				r.inUse(l)
				if r.InUse {
					return "", fmt.Errorf("%w: %s (%s lock); stop the member, or pass --force", ErrInUse, dir, r.InUseBy)
				}
			}
			for _, u := range m.OldClientURLs {
				if answers(ctx, u) {
					return "", fmt.Errorf("%w: %s; stop it, or pass --force", ErrAnswering, u)
				}
			}
		}
		return "no member runs on " + dir, nil
	case "move-aside":
		if exists(moved) {
			return "moved aside to " + moved, nil
		}
		if !exists(dir) {
			return "nothing at " + dir + " to move", nil
		}
		if err := os.Rename(dir, moved); err != nil {
			return "", fmt.Errorf("restore: %w", err)
		}
		if err := syncDir(filepath.Dir(dir)); err != nil {
			return "", err
		}
		return "moved aside to " + moved, nil
	case "write":
		if datadir.New(dir, "").Exists() {
			if _, err := checkIdentity(ctx, lg, p, m, nil); err != nil {
				return "", fmt.Errorf("%s already holds a member dir that is not this plan's: %w", dir, err)
			}
			return "written already", removeStage(dir)
		}
		if m.Survivor && p.Strategy == StrategyRollForward {
			r, err := RollForward(ctx, lg, RollForwardOptions{Base: p.current(p.RollForward.Base), DataDir: moved, OutputDir: dir})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("rolled %s forward with entries %d-%d: removed %v, applied %d, revision %d", p.RollForward.Base, r.From, r.To, r.Removed, r.Applied, r.Revision), nil
		}
		if m.Survivor {
			r, err := ForceNewCluster(ctx, lg, ForceNewClusterOptions{DataDir: moved, OutputDir: dir, RepairWAL: m.RepairWAL, KeepPastCommit: m.KeepPastCommit})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("forced a new cluster: removed %v, commit %d", r.Removed, r.LastIndex), nil
		}
		r, err := snapshot(ctx, lg, SnapshotOptions{Path: p.SourcePath, Name: m.Name, Cluster: p.specs(), Token: p.Token,
			DataDir: dir, SkipHashCheck: p.SkipHashCheck, BumpRevision: p.BumpRevision, MarkCompacted: p.BumpRevision > 0, Compact: p.BumpRevision > 0,
			keep: p.keep}, sib.checked)
		if err != nil {
			return "", err
		}
		if sib.checked != "" {
			sib.copied(dir)
			return fmt.Sprintf("copied %s, restored from %s by this run and checked: member %s, revision %d", sib.checked, p.SourcePath, r.MemberID, r.RestoredRevision), nil
		}
		if sib.restored == "" {
			sib.restored = datadir.New(dir, "").DBPath()
		}
		return fmt.Sprintf("restored %s: member %s, revision %d", p.SourcePath, r.MemberID, r.RestoredRevision), nil
	case "check":
		var known *knownDB
		if sib.isCopy(dir) {
			known = sib.known
		}
		// The db that the members after this one will copy is hashed
		// while it is checked, on the other core.
		var sums chan error
		var sum []byte
		if db := datadir.New(dir, "").DBPath(); db == sib.restored && sib.checked == "" {
			sums = make(chan error, 1)
			go func() {
				var err error
				sum, err = fileSHA256(db)
				sums <- err
			}()
		}
		r, err := checkIdentity(ctx, lg, p, m, known)
		if sums != nil {
			if serr := <-sums; err == nil && serr != nil {
				return "", fmt.Errorf("restore: %w", serr)
			}
		}
		if err != nil {
			return "", err
		}
		if sums != nil {
			sib.known = &knownDB{state: r.DB, report: r.dbReport, sum: sum}
		}
		if known != nil && r.dbReport == known.report {
			return fmt.Sprintf("member and cluster IDs, revision and HashKV as planned; the db is %s's as checked (SHA-256 %x)", sib.checked, known.sum), nil
		}
		return "member and cluster IDs, revision and HashKV as planned", nil
	}
	return "", fmt.Errorf("%w: unknown step %q", ErrBadPlan, step.Name)
}

// checkIdentity inspects a new member's dir against the plan: IDs,
// revision, compaction and HashKV (new-cluster), or the commit of the
// removals (force-new-cluster). A db with known's bytes has known's state
// (inspectDir). It returns the report of a dir that passes.
func checkIdentity(ctx context.Context, lg *slog.Logger, p *Plan, m PlanMember, known *knownDB) (*MemberReport, error) {
	r, err := inspectDir(ctx, lg, m.DataDir, InspectOptions{SkipHashKV: !p.HashKVChecked}, known)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCheckFailed, err)
	}
	var bad []string
	if !r.OK() {
		bad = append(bad, fmt.Sprintf("findings %q, errors %q", r.Findings, r.Errors))
	}
	if r.WAL == nil || r.DB == nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCheckFailed, m.DataDir, bad)
	}
	if r.WAL.NodeID != m.ID || r.WAL.ClusterID != p.ClusterID {
		bad = append(bad, fmt.Sprintf("member %s cluster %s, planned %s and %s", r.WAL.NodeID, r.WAL.ClusterID, m.ID, p.ClusterID))
	}
	if p.Strategy != StrategyRollForward && r.DB.Revision != p.Revision {
		bad = append(bad, fmt.Sprintf("revision %d, planned %d", r.DB.Revision, p.Revision))
	}
	// Only the survivor is written by force-new-cluster and roll-forward.
	switch p.Strategy {
	case StrategyRollForward:
		rf := p.RollForward
		if r.DB.ConsistentIndex <= rf.To || r.WAL.HardState.Commit < r.DB.ConsistentIndex {
			bad = append(bad, fmt.Sprintf("applied %d, commit %d: the replay must apply and commit past %d (the entries and the removals)", r.DB.ConsistentIndex, r.WAL.HardState.Commit, rf.To))
		}
		if top := p.Revision + int64(rf.Writes); r.DB.Revision < p.Revision || r.DB.Revision > top {
			bad = append(bad, fmt.Sprintf("revision %d, planned %d to %d", r.DB.Revision, p.Revision, top))
		}
		if len(r.DB.Members) != 1 {
			bad = append(bad, fmt.Sprintf("members %v, want the survivor alone", r.DB.Members))
		}
	case StrategyForceNewCluster:
		if r.WAL.HardState.Commit != r.WAL.LastIndex {
			bad = append(bad, fmt.Sprintf("commit %d does not reach the removals at %d", r.WAL.HardState.Commit, r.WAL.LastIndex))
		}
	default:
		if p.BumpRevision > 0 && r.DB.CompactRevision != p.Revision {
			bad = append(bad, fmt.Sprintf("compacted at %d, planned %d", r.DB.CompactRevision, p.Revision))
		}
		if p.HashKVChecked && (r.DB.HashKV.Hash != p.HashKV || r.DB.HashKV.HashRevision != p.Revision) {
			bad = append(bad, fmt.Sprintf("HashKV %d at %d, planned %d at %d", r.DB.HashKV.Hash, r.DB.HashKV.HashRevision, p.HashKV, p.Revision))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w: %s: %v", ErrCheckFailed, m.DataDir, bad)
	}
	return r, nil
}

// current is where a source path of the plan is now: moved aside, if it
// is a member's data dir that its move-aside step has renamed.
func (p *Plan) current(path string) string {
	for _, m := range p.Members {
		if m.DataDir == path && exists(aside(path, p)) {
			return aside(path, p)
		}
	}
	return path
}

// specs are the plan's members as --initial-cluster gives them.
func (p *Plan) specs() []MemberSpec {
	out := make([]MemberSpec, len(p.Members))
	for i, m := range p.Members {
		out[i] = MemberSpec{Name: m.Name, PeerURLs: m.PeerURLs, Learner: m.Learner}
	}
	return out
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
