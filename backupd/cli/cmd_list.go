package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/backupd/store"
	"github.com/lifeboat-dev/lifeboat/internal/clikit"
)

// listEntry is one backup in list's report.
type listEntry struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	Age       string    `json:"age"`
	Revision  int64     `json:"revision"`
	DBSize    int64     `json:"dbSize"`
	Size      int64     `json:"size"` // stored
	Codec     string    `json:"codec"`
	Verified  bool      `json:"verified"`
	Encrypted bool      `json:"encrypted"`
	Member    string    `json:"member"`
	Role      string    `json:"role"`
}

type listReport struct {
	Backups []listEntry    `json:"backups"`
	Orphans []store.Orphan `json:"orphans"`
	Broken  []store.Broken `json:"broken"`
	State   *store.State   `json:"state,omitempty"`
	// Daemon is what backupd run recorded: its schedules and last drill.
	Daemon *store.DaemonInfo `json:"daemon,omitempty"`
}

func newListCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the committed backups (a backup without a manifest is not one)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := e.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer s.Close()
			l, err := s.List(cmd.Context())
			if err != nil {
				return usage(err)
			}
			st, found, err := s.State(cmd.Context())
			if err != nil {
				return usage(err)
			}
			info, daemonFound, err := s.DaemonInfo(cmd.Context())
			if err != nil {
				return usage(err)
			}
			now := time.Now()
			rep := listReport{Orphans: l.Orphans, Broken: l.Broken, Backups: []listEntry{}}
			if found {
				rep.State = &st
			}
			if daemonFound {
				rep.Daemon = &info
			}
			for _, b := range l.Backups {
				m := b.Manifest
				rep.Backups = append(rep.Backups, listEntry{ID: m.ID, Time: b.ID.Time, Age: ageOf(now, b.ID.Time), Revision: m.Revision,
					DBSize: m.DBSize, Size: m.Object.Size, Codec: m.Object.Codec, Verified: true, Encrypted: m.Encrypted(),
					Member: m.MemberID, Role: m.Role})
			}
			if e.output == "json" {
				return clikit.WriteJSON(e.stdout, rep)
			}
			t := &clikit.Table{Headers: []string{"id", "age", "revision", "db size", "size", "codec", "verified", "encrypted", "member"}, Left: true}
			yes := func(b bool) string {
				if b {
					return "yes"
				}
				return "no"
			}
			for _, b := range rep.Backups {
				t.Add(b.ID, b.Age, fmt.Sprint(b.Revision), clikit.Size(b.DBSize), clikit.Size(b.Size), b.Codec, yes(b.Verified), yes(b.Encrypted), b.Member+" ("+b.Role+")")
			}
			if err := t.Render(e.stdout); err != nil {
				return err
			}
			if len(l.Orphans) > 0 || len(l.Broken) > 0 {
				fmt.Fprintf(e.stdout, "%d orphan objects (no manifest), %d directories with a manifest that does not parse; -w json lists them\n", len(l.Orphans), len(l.Broken))
			}
			if found && st.Result == store.ResultFailed {
				fmt.Fprintf(e.stdout, "newest attempt FAILED at %s (%s): %s\n", st.Start.Format(time.RFC3339), st.Cause, st.Error)
			}
			if rep.Daemon != nil {
				var newest *time.Time
				if n := len(l.Backups); n > 0 {
					newest = &l.Backups[n-1].ID.Time // oldest first
				}
				writeDaemon(e.stdout, *rep.Daemon, newest, now)
			}
			return nil
		},
	}
}

// writeDaemon tells the daemon's schedules and last drill under the table,
// and whether the newest backup is older than twice the interval (what
// the daemon's /healthz fails on).
func writeDaemon(w io.Writer, info store.DaemonInfo, newest *time.Time, now time.Time) {
	iv := time.Duration(info.Schedule.Interval)
	fmt.Fprintf(w, "schedule %s (every %s), by %s since %s\n", info.Schedule.Spec, iv, info.Holder, info.Started.Format(time.RFC3339))
	if newest != nil && iv > 0 && now.Sub(*newest) > 2*iv {
		fmt.Fprintf(w, "newest backup is STALE: %s old, more than twice the interval\n", ageOf(now, *newest))
	}
	d := info.LastDrill
	of := "of no backup"
	if d != nil && d.ID != "" {
		of = "of " + d.ID
	}
	switch {
	case d == nil && info.Drill == nil:
		fmt.Fprintln(w, "drills not scheduled, none recorded")
	case d == nil:
		fmt.Fprintf(w, "drills %s, none recorded yet\n", info.Drill.Spec)
	case d.OK:
		fmt.Fprintf(w, "last drill ok at %s (%s ago) %s\n", d.End.Format(time.RFC3339), ageOf(now, d.End), of)
	default:
		fmt.Fprintf(w, "last drill FAILED at %s (%s ago) %s: %s\n", d.End.Format(time.RFC3339), ageOf(now, d.End), of, d.Error)
	}
}
