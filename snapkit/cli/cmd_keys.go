package cli

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// openDB opens a db for the key commands; failures are bad input (exit 2)
// or damage (exit 1).
func openDB(cmd *cobra.Command, e *env, path string) (*snapkit.DB, error) {
	db, err := snapkit.OpenDB(cmd.Context(), path, e.logger)
	if err != nil {
		return nil, inputError(err)
	}
	return db, nil
}

// revError: a revision outside the db's history is bad usage; anything
// else went wrong inside the file.
func revError(err error) error {
	if errors.Is(err, snapkit.ErrCompacted) || errors.Is(err, snapkit.ErrFutureRev) || errors.Is(err, snapkit.ErrBadRevision) {
		return usage(err)
	}
	return finding(err)
}

func newHashKVCommand(e *env) *cobra.Command {
	var rev int64
	cmd := &cobra.Command{
		Use:   "hashkv <file|data-dir>",
		Short: "Print etcd's HashKV of the key bucket at a revision, as a member would answer it",
		Long: `hashkv computes Maintenance.HashKV offline: the same number a live member
gives 'etcdctl endpoint hashkv' at that revision, and 'etcdutl hashkv' gives,
without modifying the file (etcdutl's opens it read-write).`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			db, err := openDB(cmd, e, a[0])
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := db.HashKV(rev)
			if err != nil {
				return revError(err)
			}
			if e.output.Is("json") {
				return clikit.WriteJSON(e.stdout, res)
			}
			t := &table{headers: []string{"hash", "hash revision", "compact revision", "revision"}}
			t.add(strconv.FormatUint(uint64(res.Hash), 10), strconv.FormatInt(res.HashRevision, 10),
				strconv.FormatInt(res.CompactRevision, 10), strconv.FormatInt(res.Revision, 10))
			return t.render(e.stdout)
		},
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "revision to hash up to (default: the latest)")
	return cmd
}

// newLsCommand builds ls (keys under a prefix) and get (one key, with its
// value); both take every flag.
func newLsCommand(e *env, name string) *cobra.Command {
	var o snapkit.ListOptions
	cmd := &cobra.Command{
		Args: args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if len(a) == 2 {
				o.Key = []byte(a[1])
			} else if !o.Prefix {
				return usage(fmt.Errorf("%s: give a key, or --prefix for every key", name))
			}
			db, err := openDB(cmd, e, a[0])
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := db.List(o)
			if err != nil {
				return revError(err)
			}
			if e.output.Is("json") {
				return clikit.WriteJSON(e.stdout, res)
			}
			headers := []string{"key", "create rev", "mod rev", "version", "lease", "value size"}
			if !o.KeysOnly {
				headers = append(headers, "value")
			}
			t := &table{headers: headers}
			for _, kv := range res.KVs {
				row := []string{kv.Key, strconv.FormatInt(kv.CreateRevision, 10), strconv.FormatInt(kv.ModRevision, 10),
					strconv.FormatInt(kv.Version, 10), leaseString(kv.Lease), clikit.Size(int64(kv.ValueSize))}
				if !o.KeysOnly {
					row = append(row, truncate(kv.Value, 60))
				}
				t.add(row...)
			}
			if err := t.render(e.stdout); err != nil {
				return err
			}
			more := ""
			if res.More {
				more = fmt.Sprintf(" (%d shown; --limit)", len(res.KVs))
			}
			fmt.Fprintf(e.stdout, "%d key(s) at revision %d%s\n", res.Count, res.Revision, more)
			return nil
		},
	}
	switch name {
	case "ls":
		cmd.Use = "ls <file|data-dir> [prefix]"
		cmd.Short = "List the keys live at a revision (every key, or those under a prefix)"
	default:
		cmd.Use = "get <file|data-dir> <key>"
		cmd.Short = "Print a key (or, with --prefix, keys) with its value as of a revision"
	}
	isLs := name == "ls"
	cmd.Flags().BoolVar(&o.Prefix, "prefix", isLs, "treat the key as a prefix")
	cmd.Flags().Int64Var(&o.Rev, "rev", 0, "revision to read at (default: the latest)")
	cmd.Flags().BoolVar(&o.KeysOnly, "keys-only", isLs, "leave the values out")
	cmd.Flags().IntVar(&o.Limit, "limit", 0, "show at most this many keys (0: all)")
	return cmd
}

func leaseString(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 16)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func newDiffCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff <a> <b>",
		Short: "Compare the live keys of two snapshots or data dirs; exit 1 if they differ",
		Long: `diff compares the keys live at the head of a and of b: added (only in b),
removed (only in a), changed (value or lease differs), with each side's
revisions. A key rewritten with the same value does not count.`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			da, err := openDB(cmd, e, a[0])
			if err != nil {
				return err
			}
			defer da.Close()
			db, err := openDB(cmd, e, a[1])
			if err != nil {
				return err
			}
			defer db.Close()
			r, err := snapkit.Diff(da, db)
			if err != nil {
				return inputError(err)
			}
			if e.output.Is("json") {
				if err := clikit.WriteJSON(e.stdout, r); err != nil {
					return err
				}
			} else if err := renderDiff(e, r); err != nil {
				return err
			}
			if !r.Same() {
				return finding(fmt.Errorf("%s and %s differ: %d added, %d removed, %d changed", a[0], a[1], r.Added, r.Removed, r.Changed))
			}
			return nil
		},
	}
	return cmd
}

func renderDiff(e *env, r *snapkit.DiffReport) error {
	sides := &table{headers: []string{"side", "path", "compact revision", "revision", "live keys"}}
	for _, s := range []struct {
		name string
		d    snapkit.DiffSide
	}{{"a", r.A}, {"b", r.B}} {
		sides.add(s.name, s.d.Path, strconv.FormatInt(s.d.CompactRevision, 10), strconv.FormatInt(s.d.Revision, 10), strconv.Itoa(s.d.Keys))
	}
	if err := sides.render(e.stdout); err != nil {
		return err
	}
	if len(r.Entries) > 0 {
		rev := func(k *snapkit.KeyRevision) string {
			if k == nil {
				return ""
			}
			return fmt.Sprintf("mod %d create %d v%d", k.ModRevision, k.CreateRevision, k.Version)
		}
		t := &table{headers: []string{"change", "key", "a", "b"}}
		for _, d := range r.Entries {
			t.add(d.Change, d.Key, rev(d.A), rev(d.B))
		}
		if err := t.render(e.stdout); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(e.stdout, "%d added, %d removed, %d changed\n", r.Added, r.Removed, r.Changed)
	return err
}

func newPrefixesCommand(e *env) *cobra.Command {
	var depth int
	cmd := &cobra.Command{
		Use:   "prefixes <file|data-dir>",
		Short: "Size the key space by key prefix: live keys at the head, and every revision kept",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if depth < 1 {
				return usage(fmt.Errorf("--depth must be at least 1, not %d", depth))
			}
			db, err := openDB(cmd, e, a[0])
			if err != nil {
				return err
			}
			defer db.Close()
			r, err := db.Prefixes(depth)
			if err != nil {
				return inputError(err)
			}
			if e.output.Is("json") {
				return clikit.WriteJSON(e.stdout, r)
			}
			t := &table{headers: []string{"prefix", "live keys", "key bytes", "value bytes", "revisions", "revision bytes"}}
			for _, p := range r.Prefixes {
				name := p.Prefix
				if name == "" {
					name = "(none)"
				}
				t.add(name, strconv.Itoa(p.LiveKeys), clikit.Size(p.LiveKeyBytes), clikit.Size(p.LiveValueBytes), strconv.Itoa(p.Revisions), clikit.Size(p.RevisionBytes))
			}
			return t.render(e.stdout)
		},
	}
	cmd.Flags().IntVar(&depth, "depth", 2, "path components in a prefix")
	return cmd
}
