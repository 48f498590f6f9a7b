package cli

import (
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

// hashkvOptions are the flags of snapkit hashkv.
type hashkvOptions struct {
	out *clikit.Output
	rev int64
}

// AddFlags registers hashkv's flags.
func (o *hashkvOptions) AddFlags(cmd *cobra.Command) {
	o.out.AddFlags(cmd.Flags())
	cmd.Flags().Int64Var(&o.rev, "rev", 0, "revision to hash up to (default: the latest)")
}

func newHashKVCommand(e *env) *cobra.Command {
	o := &hashkvOptions{out: clikit.NewOutput("table", "json")}
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
			res, err := db.HashKV(o.rev)
			if err != nil {
				return revError(err)
			}
			if o.out.Is("json") {
				return clikit.WriteJSON(e.stdout, res)
			}
			t := &clikit.Table{Headers: []string{"hash", "hash revision", "compact revision", "revision"}}
			t.Add(strconv.FormatUint(uint64(res.Hash), 10), strconv.FormatInt(res.HashRevision, 10),
				strconv.FormatInt(res.CompactRevision, 10), strconv.FormatInt(res.Revision, 10))
			return t.Render(e.stdout)
		},
	}
	o.AddFlags(cmd)
	return cmd
}
