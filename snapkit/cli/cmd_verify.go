package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// verifyOptions are the flags of snapkit verify.
type verifyOptions struct {
	out         *clikit.Output
	skipTrailer bool
}

// AddFlags registers verify's flags.
func (o *verifyOptions) AddFlags(cmd *cobra.Command) {
	o.out.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.skipTrailer, "skip-hash-check", false, "do not verify the SHA-256 trailer")
}

func newVerifyCommand(e *env) *cobra.Command {
	o := &verifyOptions{out: clikit.NewOutput("table", "json")}
	cmd := &cobra.Command{
		Use:   "verify <file|data-dir|file.snap>",
		Short: "Check the trailer, every bbolt page and the etcd schema; exit 1 on any finding",
		Long: `verify checks the SHA-256 trailer, walks every bbolt page (what bbolt's
Tx.Check does, without trusting the file), decodes every revision and KeyValue
of the key bucket and checks their order, the meta bucket (consistent index,
term, compaction marks), the members, and that every lease a live key holds
exists. Each finding names the page, bucket or key. A raft .snap file is
checked for its CRC, its encoding, its name and its v2-store membership.

Exit 0 intact, 1 a finding, 2 bad usage or unreadable input.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if isSnapFile(a[0]) {
				return o.verifySnap(e, a[0])
			}
			r, err := inspectFile(cmd, e, a[0], o.skipTrailer)
			if err != nil {
				return err
			}
			if o.out.Is("json") {
				if err := clikit.WriteJSON(e.stdout, r); err != nil {
					return err
				}
			} else {
				if err := renderFindings(e, r.Findings); err != nil {
					return err
				}
				if r.OK() {
					fmt.Fprintf(e.stdout, "OK: %s (%s), revision %d, %d keys, %s\n", a[0], r.Source.Describe(), r.Revision, r.TotalKey, clikit.Size(r.TotalSize))
				}
			}
			if !r.OK() {
				return finding(fmt.Errorf("%s: %d problem(s) found", a[0], len(r.Findings)+r.Suppressed))
			}
			return nil
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// verifySnap checks a raft .snap file.
func (o *verifyOptions) verifySnap(e *env, path string) error {
	st, err := inspectSnap(path)
	if err != nil {
		return err
	}
	if o.out.Is("json") {
		err = clikit.WriteJSON(e.stdout, st)
	} else if err = renderFindings(e, st.Findings); err == nil && st.OK() {
		_, err = fmt.Fprintf(e.stdout, "OK: %s (%s), term %d, index %d, %d members\n", path, st.Source.Describe(), st.Term, st.Index, len(st.Members))
	}
	if err != nil {
		return err
	}
	if !st.OK() {
		return finding(fmt.Errorf("%s: %d problem(s) found", path, len(st.Findings)))
	}
	return nil
}

// renderFindings prints a table of findings, if there are any.
func renderFindings(e *env, fs []snapkit.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	t := &clikit.Table{Headers: []string{"check", "page", "bucket", "key", "problem"}}
	for _, f := range fs {
		page := ""
		if f.Page != nil {
			page = strconv.FormatUint(*f.Page, 10)
		}
		t.Add(f.Check, page, f.Bucket, f.Key, f.Message)
	}
	return t.Render(e.stdout)
}
