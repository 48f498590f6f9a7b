package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/internal/clikit"
	"github.com/lifeboat-dev/lifeboat/snapkit"
	"github.com/lifeboat-dev/lifeboat/walkit/inspect"
)

// listOptions are the flags ls and get share.
type listOptions struct {
	out  *clikit.Output
	list snapkit.ListOptions
}

// AddFlags registers --rev and --limit, and -w.
func (o *listOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	o.out.AddFlags(f)
	f.Int64Var(&o.list.Rev, "rev", 0, "revision to read at (default: the latest)")
	f.IntVar(&o.list.Limit, "limit", 0, "show at most this many keys (0: all)")
}

// read lists the keys of the db at path as o.list says.
func (o *listOptions) read(cmd *cobra.Command, e *env, path string) (snapkit.ListResult, error) {
	if o.list.Limit < 0 {
		return snapkit.ListResult{}, usage(fmt.Errorf("--limit must not be negative, not %d", o.list.Limit))
	}
	db, err := openDB(cmd, e, path)
	if err != nil {
		return snapkit.ListResult{}, err
	}
	defer db.Close()
	res, err := db.List(o.list)
	if err != nil {
		return snapkit.ListResult{}, revError(err)
	}
	return res, nil
}

// renderList prints the keys as a table, with their values unless keysOnly.
func renderList(e *env, res snapkit.ListResult, keysOnly bool) error {
	headers := []string{"key", "create rev", "mod rev", "version", "lease", "value size"}
	if !keysOnly {
		headers = append(headers, "value")
	}
	t := &clikit.Table{Headers: headers}
	for _, kv := range res.KVs {
		row := []string{text(kv.Key), strconv.FormatInt(kv.CreateRevision, 10), strconv.FormatInt(kv.ModRevision, 10),
			strconv.FormatInt(kv.Version, 10), leaseString(kv.Lease), clikit.Size(int64(kv.ValueSize))}
		if !keysOnly {
			row = append(row, truncate(text(kv.Value), 60))
		}
		t.Add(row...)
	}
	if err := t.Render(e.stdout); err != nil {
		return err
	}
	more := ""
	if res.More {
		more = fmt.Sprintf(" (%d shown; --limit)", len(res.KVs))
	}
	_, err := fmt.Fprintf(e.stdout, "%d key(s) at revision %d%s\n", res.Count, res.Revision, more)
	return err
}

func leaseString(id int64) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(id, 16)
}

// text is a key or value as the JSON prints it: UTF-8 text when printable,
// "base64:..." otherwise.
func text(b inspect.Bytes) string {
	t, _ := b.MarshalText() // never fails
	return string(t)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
