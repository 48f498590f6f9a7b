package snapkit

import (
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"log/slog"
	"slices"
	"sync"
	"time"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Status is what `etcdutl snapshot status` reports (the first five fields,
// named as it names them in JSON), and what else a single pass can tell.
type Status struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`

	// TotalKeyV35 is what etcdutl 3.5 printed as totalKey: every pair in
	// every bucket.
	TotalKeyV35 int `json:"totalKeyV35"`

	Source   Source   `json:"source"`
	Trailer  Trailer  `json:"trailer"`
	Bolt     boltMeta `json:"bolt"`
	FileSize int64    `json:"fileSize"`
	// SizeInUse is TotalSize less the free pages, as etcd's dbSizeInUse.
	SizeInUse int64          `json:"sizeInUse"`
	Buckets   []BucketStatus `json:"buckets"`

	KeyBucket KeyBucketStatus `json:"keyBucket"`
	Meta      MetaStatus      `json:"meta"`
	Members   []MemberStatus  `json:"members"`
	Removed   []string        `json:"removedMembers,omitempty"` // hex IDs
	Leases    int             `json:"leases"`
	Auth      AuthStatus      `json:"auth"`
}

// AuthStatus is the auth buckets: auth enabled and the auth revision (auth),
// and how many users (authUsers) and roles (authRoles) there are.
type AuthStatus struct {
	Enabled  bool   `json:"enabled"`
	Revision uint64 `json:"revision"`
	Users    int    `json:"users"`
	Roles    int    `json:"roles"`
}

// BucketStatus sizes one root bucket.
type BucketStatus struct {
	Name       string `json:"name"`
	Pairs      int    `json:"pairs"`
	KeyBytes   int64  `json:"keyBytes"`
	ValueBytes int64  `json:"valueBytes"`
}

// Report is Status plus the findings of the checks. Status and Verify both
// make one; verify's exit status comes from Findings.
type Report struct {
	Status
	// Partial says the bbolt structure is damaged, so the walk could not
	// read the db whole: of Status, only Source, Trailer, Bolt and FileSize
	// were read, and the rest is not to be shown.
	Partial    bool          `json:"partial,omitempty"`
	Findings   []Finding     `json:"findings"`
	Suppressed int           `json:"suppressedFindings,omitempty"`
	Took       time.Duration `json:"tookNanos"`
	// HashKV is HashKV at the current revision, with Options.HashKV.
	HashKV *HashKVResult `json:"hashKV,omitempty"`
	// KeepSet, with Options.HashKV, is what a compaction above the
	// current revision keeps, for a db whose trailer was verified and in
	// which nothing was found.
	KeepSet *KeepSet `json:"-"`
}

// OK reports whether no check found anything.
func (r *Report) OK() bool { return len(r.Findings) == 0 && r.Suppressed == 0 }

// MarshalJSON writes a partial report without the numbers that were not
// read.
func (r Report) MarshalJSON() ([]byte, error) {
	type whole Report // without this method
	if !r.Partial {
		return json.Marshal(whole(r))
	}
	return json.Marshal(struct {
		Partial    bool          `json:"partial"`
		Source     Source        `json:"source"`
		Trailer    Trailer       `json:"trailer"`
		Bolt       boltMeta      `json:"bolt"`
		FileSize   int64         `json:"fileSize"`
		Findings   []Finding     `json:"findings"`
		Suppressed int           `json:"suppressedFindings,omitempty"`
		Took       time.Duration `json:"tookNanos"`
	}{true, r.Source, r.Trailer, r.Bolt, r.FileSize, r.Findings, r.Suppressed, r.Took})
}

// Options tune Inspect.
type Options struct {
	Logger *slog.Logger
	// Progress receives the bytes done (hashing and walking together) of
	// the total.
	Progress Progress
	// SkipTrailer does not verify the SHA-256 trailer.
	SkipTrailer bool
	// TempDir is where the walk spills its record of the key bucket when
	// that outgrows 10 MiB (a db of more than about 130,000 distinct keys),
	// in a file removed as soon as it is created; "" is os.TempDir().
	TempDir string
	// SkipHash leaves Report.Hash, etcdutl's CRC-32C of every pair (no
	// check: a figure to report), out: 0. The walk's checks are the same.
	SkipHash bool
	// HashKV also computes etcd's HashKV at the current revision
	// (Report.HashKV), without bbolt or a key index (so with the walk's
	// bounded resident set): from the walk's CRC-32C of each pair when no
	// pair is above the compaction (HashKVCompactAt, or a db compacted at
	// its last revision, as a compacted restore writes) and some key is
	// live, else in a second walk, while the trailer is hashed. It is left
	// out when the first walk found anything.
	HashKV bool
	// HashKVCompactAt, with HashKV, is a revision at or above the current
	// one: HashKV is then computed at it, as if the db were compacted there
	// (every pair but the last put of each live key left out): what a db
	// restored from this one with its revision bumped to HashKVCompactAt
	// and marked compacted answers there, before its bump marker pair.
	// Every revision above the current one gives the same Hash (the same
	// keep set, and no pair at the compaction), so a caller that does not
	// know the bump yet may pass math.MaxInt64. 0 is the current revision
	// and the db's own compaction.
	HashKVCompactAt int64
}

// statusVisitor computes etcdutl's numbers from the walk, and hands the
// key bucket's pairs to a keyBucket. crc is nil with Options.SkipHash.
type statusVisitor struct {
	crc   hash.Hash32
	st    *Status
	cur   *BucketStatus
	isKey bool
	keys  *keyBucket
}

func (s *statusVisitor) start(bucket []byte) {
	s.data(bucket)
	s.st.Buckets = append(s.st.Buckets, BucketStatus{Name: string(bucket)})
	s.cur = &s.st.Buckets[len(s.st.Buckets)-1]
	s.isKey = s.cur.Name == bucketKey
}

func (s *statusVisitor) kv(bucket, k, v []byte) {
	s.cur.Pairs++
	s.cur.KeyBytes += int64(len(k))
	s.cur.ValueBytes += int64(len(v))
	if s.isKey {
		s.keys.add(k, v)
	}
}

// data hashes the keys and values as etcdutl does.
func (s *statusVisitor) data(b []byte) {
	if s.crc != nil {
		s.crc.Write(b)
	}
}

// Inspect reads a snapshot file, db file or data dir once: it verifies the
// trailer in one goroutine while another walks the db, computes etcdutl's
// CRC-32C and reads the key bucket, then it checks the schema. An error
// means the input could not be read at all; damage inside it is reported
// as Findings.
func Inspect(ctx context.Context, path string, opts Options) (*Report, error) {
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	src, d, err := openPath(path)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	r := &Report{Status: Status{Source: src, FileSize: src.FileSize, Bolt: d.meta, TotalSize: d.Size()}}

	progress := sumProgress(opts.Progress, d.Size()+trailerWork(src, opts))
	var (
		wg      sync.WaitGroup
		trailer Trailer
		terr    error
	)
	if src.HasTrailer && !opts.SkipTrailer {
		wg.Add(1)
		go func() {
			defer wg.Done()
			trailer, terr = VerifyTrailer(ctx, src, progress.part(0))
		}()
	}
	fs := &findings{}
	kb := newKeyBucket(fs, opts.TempDir)
	defer kb.close()
	kb.wantPos, kb.wantCRC = opts.HashKV, opts.HashKV
	v := &statusVisitor{st: &r.Status, keys: kb}
	if !opts.SkipHash {
		v.crc = crc32.New(castagnoli)
	}
	// Everything up to the trailer's finding runs while the trailer is
	// still being hashed.
	stats, err := walk(ctx, d, v, fs, progress.part(1))
	if err != nil {
		wg.Wait()
		return nil, err
	}
	if err := kb.finish(&r.Status); err != nil {
		wg.Wait()
		return nil, err
	}
	lg.Debug("walked", "path", src.DBPath, "pages", stats.ReachablePages, "took", time.Since(start))
	if v.crc != nil {
		r.Hash = v.crc.Sum32()
	}
	r.SizeInUse = stats.ReachablePages * int64(d.pageSize)
	for _, b := range r.Buckets {
		r.TotalKeyV35 += b.Pairs
	}
	r.Partial = fs.structural()
	if err := checkSchema(src, &r.Status, kb, fs); err != nil {
		wg.Wait()
		return nil, err
	}
	if opts.HashKV && len(fs.list) == 0 && fs.suppressed == 0 {
		hk, err := kb.hashKV(&r.Status, opts.HashKVCompactAt)
		if errors.Is(err, errHashKVWalk) {
			hk, err = hashKVWalk(ctx, d, &r.Status, kb, opts.HashKVCompactAt)
		}
		if err != nil {
			wg.Wait()
			return nil, err
		}
		r.HashKV = &hk
	}
	wg.Wait()
	if terr != nil {
		return nil, terr
	}
	r.Trailer = trailer
	if trailer.Present && !trailer.Valid {
		fs.add(Finding{Check: CheckTrailer, Message: fmt.Sprintf("SHA-256 mismatch: trailer %s, computed %s", trailer.Want, trailer.Got)})
	}
	// List each check's findings together, in key order.
	slices.SortStableFunc(fs.list, func(a, b Finding) int { return cmp.Or(cmp.Compare(a.Check, b.Check), cmp.Compare(a.Key, b.Key)) })
	r.Findings, r.Suppressed = fs.list, fs.suppressed
	if r.HashKV != nil && trailer.Valid && r.OK() {
		r.KeepSet = &KeepSet{revisions: uint64(kb.st.Revisions), bits: kb.livePos}
		if _, err := hex.Decode(r.KeepSet.dbSHA256[:], []byte(trailer.Got)); err != nil {
			return nil, fmt.Errorf("snapkit: %s: the trailer's sum %q: %w", src.Path, trailer.Got, err)
		}
	}
	r.Took = time.Since(start)
	return r, nil
}

// trailerWork is how many bytes the trailer check will hash.
func trailerWork(src Source, opts Options) int64 {
	if src.HasTrailer && !opts.SkipTrailer {
		return src.DBSize
	}
	return 0
}

// progressSum adds up the progress of concurrent parts into one Progress.
type progressSum struct {
	mu    sync.Mutex
	out   Progress
	total int64
	parts [2]int64
}

func sumProgress(out Progress, total int64) *progressSum {
	return &progressSum{out: out, total: total}
}

func (p *progressSum) part(i int) Progress {
	if p.out == nil {
		return nil
	}
	return func(done, _ int64) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.parts[i] = done
		p.out(p.parts[0]+p.parts[1], p.total)
	}
}
