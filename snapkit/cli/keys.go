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

// AddFlags registers the flags of ls (isLs) or get.
func (o *listOptions) AddFlags(cmd *cobra.Command, isLs bool) {
	f := cmd.Flags()
	o.out.AddFlags(f)
	f.BoolVar(&o.list.Prefix, "prefix", isLs, "treat the key as a prefix")
	f.Int64Var(&o.list.Rev, "rev", 0, "revision to read at (default: the latest)")
	f.BoolVar(&o.list.KeysOnly, "keys-only", isLs, "leave the values out")
	f.IntVar(&o.list.Limit, "limit", 0, "show at most this many keys (0: all)")
}

// run lists the keys of the db at a[0] (a[1], if given, the key or prefix).
func (o *listOptions) run(cmd *cobra.Command, e *env, a []string) error {
	if len(a) == 2 {
		o.list.Key = []byte(a[1])
	} else if !o.list.Prefix {
		return usage(fmt.Errorf("%s: give a key, or --prefix for every key", cmd.Name()))
	}
	db, err := openDB(cmd, e, a[0])
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := db.List(o.list)
	if err != nil {
		return revError(err)
	}
	if o.out.Is("json") {
		return clikit.WriteJSON(e.stdout, res)
	}
	return renderList(e, res, o.list.KeysOnly)
}

func renderList(e *env, res snapkit.ListResult, keysOnly bool) error {
	headers := []string{"key", "create rev", "mod rev", "version", "lease", "value size"}
	if !keysOnly {
		headers = append(headers, "value")
	}
	t := &table{headers: headers}
	for _, kv := range res.KVs {
		row := []string{text(kv.Key), strconv.FormatInt(kv.CreateRevision, 10), strconv.FormatInt(kv.ModRevision, 10),
			strconv.FormatInt(kv.Version, 10), leaseString(kv.Lease), clikit.Size(int64(kv.ValueSize))}
		if !keysOnly {
			row = append(row, truncate(text(kv.Value), 60))
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
