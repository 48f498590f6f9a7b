package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/backupd"
)

func newRunCommand(e *env) *cobra.Command {
	var (
		o             backupOptions
		r             retentionOptions
		ids           identityOptions
		schedule      string
		drillSchedule string
		listen        string
		slotRetries   int
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: a backup at every slot of --schedule, retention after each, /healthz and /metrics on --listen",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sched, err := backupd.ParseSchedule(schedule)
			if err != nil {
				return usage(err)
			}
			run, err := o.runner(e, cmd)
			if err != nil {
				return err
			}
			defer run.Config.Store.Close()
			if err := r.apply(run); err != nil {
				return err
			}
			run.PruneAfter = true
			d := &backupd.Daemon{Runner: run, Schedule: sched, Metrics: backupd.NewMetrics(), SlotRetries: slotRetries}
			if drillSchedule != "" {
				if d.DrillSchedule, err = backupd.ParseSchedule(drillSchedule); err != nil {
					return usage(err)
				}
				ro, err := ids.readOptions(e, "drill")
				if err != nil {
					return err
				}
				ro.Progress = nil
				d.Drill = &backupd.Drill{Store: run.Config.Store, Read: ro, Restore: e.opts.Restorer, WorkDir: e.spoolDir, Logger: e.logger}
			}
			ctx := cmd.Context()
			if listen != "" {
				l, err := net.Listen("tcp", listen)
				if err != nil {
					return usage(fmt.Errorf("--listen: %w", err))
				}
				srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
				go func() { _ = srv.Serve(l) }()
				defer func() {
					sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					defer cancel()
					_ = srv.Shutdown(sctx)
				}()
				e.logger.Info("serving /healthz and /metrics", "addr", l.Addr().String())
			}
			e.logger.Info("backupd running", "bucket", run.Config.Store.URL(), "prefix", run.Config.Store.Prefix(),
				"schedule", schedule, "next", sched.Next(time.Now()), "retention", run.Policy.String(), "holder", run.Holder)
			return d.Run(ctx)
		},
	}
	o.AddFlags(cmd)
	r.AddFlags(cmd)
	ids.AddFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&schedule, "schedule", backupd.DefaultSchedule, "robfig/cron/v3 spec (UTC), or @every D (aligned to the epoch)")
	f.StringVar(&drillSchedule, "drill-schedule", "", "run a restore drill of the latest backup on this schedule (off by default)")
	f.StringVar(&listen, "listen", "", "address for /healthz and /metrics, e.g. 127.0.0.1:9479 (off by default)")
	f.IntVar(&slotRetries, "slot-retries", 2, "retries of a failed attempt within its slot")
	return cmd
}
