package backupd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// ErrSnapshot means a snapshot file failed one of snapkit's checks.
var ErrSnapshot = errors.New("backupd: snapshot failed verification")

// facts is what snapkit tells of a verified snapshot file.
type facts struct {
	Revision, CompactRevision int64
	RaftIndex, RaftTerm       uint64
	HashKV                    uint32
	HashKVRevision            int64
	TotalKey                  int
	DBSize                    int64
	DBSHA256                  string
	StorageVersion            string
}

// inspectSpool runs snapkit on a snapshot file: the SHA-256 trailer, the
// bbolt structure and the schema, and HashKV at the current revision, all
// with snapkit's bounded walks (Inspect with HashKV). Any finding is an
// error wrapping ErrSnapshot.
func inspectSpool(ctx context.Context, path string, lg *slog.Logger) (facts, error) {
	rep, err := snapkit.Inspect(ctx, path, snapkit.Options{Logger: lg, HashKV: true})
	if err != nil {
		return facts{}, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	if !rep.Trailer.Present {
		return facts{}, fmt.Errorf("%w: %d bytes: no SHA-256 trailer", ErrSnapshot, rep.FileSize)
	}
	if !rep.OK() {
		more := ""
		if n := len(rep.Findings) + rep.Suppressed - 1; n > 0 {
			more = fmt.Sprintf(" (and %d more)", n)
		}
		return facts{}, fmt.Errorf("%w: %s%s", ErrSnapshot, rep.Findings[0], more)
	}
	hk := rep.HashKV
	if hk == nil {
		return facts{}, fmt.Errorf("%w: hashkv: not computed", ErrSnapshot)
	}
	rev := hk.Revision
	if rev == 0 {
		rev = 1 // an empty store is at revision 1, as etcd reports it
	}
	return facts{
		Revision: rev, CompactRevision: hk.CompactRevision,
		RaftIndex: rep.Meta.ConsistentIndex, RaftTerm: rep.Meta.Term,
		HashKV: hk.Hash, HashKVRevision: hk.HashRevision, TotalKey: rep.TotalKey,
		DBSize: rep.Source.DBSize, DBSHA256: rep.Trailer.Got, StorageVersion: rep.Meta.StorageVersion,
	}, nil
}
