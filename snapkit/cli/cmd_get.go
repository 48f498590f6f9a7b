package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/snapkit"
)

// getOptions are the flags of snapkit get, etcdctl get's.
type getOptions struct {
	listOptions
}

// AddFlags registers get's flags.
func (o *getOptions) AddFlags(cmd *cobra.Command) {
	o.listOptions.AddFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.list.Prefix, "prefix", false, "treat the key as a prefix")
	f.BoolVar(&o.list.KeysOnly, "keys-only", false, "leave the values out")
}

func newGetCommand(e *env) *cobra.Command {
	o := &getOptions{listOptions{out: clikit.NewOutput("table", "json", "simple", "fields")}}
	cmd := &cobra.Command{
		Use:   "get <file|data-dir> <key>",
		Short: "Print a key (or, with --prefix, keys) with its value as of a revision",
		Long: `get prints a key, or with --prefix the keys under it, as etcdctl get would
have at that revision. -w simple and -w fields are etcdctl's (fields without
the response header's cluster, member and raft term, which a file does not
hold); -w json names the fields as etcd's KeyValue, with keys and values as
text when printable and base64:... otherwise.`,
		Args: args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			switch {
			case len(a) == 2:
				o.list.Key = []byte(a[1])
			case !o.list.Prefix:
				return usage(errors.New("get: give a key, or --prefix for every key"))
			}
			res, err := o.read(cmd, e, a[0])
			if err != nil {
				return err
			}
			switch o.out.Format() {
			case "json":
				return clikit.WriteJSON(e.stdout, res)
			case "simple":
				return writeSimple(e, res)
			case "fields":
				return writeFields(e, res)
			}
			return renderList(e, res, o.list.KeysOnly)
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// writeSimple prints each key and its value on lines of their own, as
// etcdctl's simple printer does.
func writeSimple(e *env, res snapkit.ListResult) error {
	var b strings.Builder
	for _, kv := range res.KVs {
		fmt.Fprintf(&b, "%s\n%s\n", kv.Key.Raw, kv.Value.Raw)
	}
	_, err := fmt.Fprint(e.stdout, b.String())
	return err
}

// writeFields prints etcdctl's fields form.
func writeFields(e *env, res snapkit.ListResult) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\"Revision\" : %d\n", res.Revision)
	for _, kv := range res.KVs {
		fmt.Fprintf(&b, "\"Key\" : %q\n\"CreateRevision\" : %d\n\"ModRevision\" : %d\n\"Version\" : %d\n\"Value\" : %q\n\"Lease\" : %d\n",
			kv.Key.Raw, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Value.Raw, kv.Lease)
	}
	fmt.Fprintf(&b, "\"More\" : %t\n\"Count\" : %d\n", res.More, res.Count)
	_, err := fmt.Fprint(e.stdout, b.String())
	return err
}
