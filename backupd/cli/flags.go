package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/retention"
	"github.com/lifeboat-dev/lifeboat/internal/clikit/etcdflags"
)

// backupOptions choose how a backup is taken and stored.
type backupOptions struct {
	conn        etcdflags.Flags
	compression string
	level       int
	encryptTo   []string
	recipients  []string
	maxLag      uint64
	holder      string
	lockTTL     time.Duration
}

func (o *backupOptions) AddFlags(cmd *cobra.Command) {
	o.conn.AddFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.compression, "compression", codec.Zstd, "zstd, gzip or none")
	f.IntVar(&o.level, "compression-level", 0, "zstd 1-22 or gzip 1-9 (0: the codec's default)")
	f.StringArrayVar(&o.encryptTo, "encrypt-to", nil, "age recipient (age1...) to encrypt to (repeatable)")
	f.StringArrayVar(&o.recipients, "recipients-file", nil, "file of age recipients, one a line (repeatable)")
	f.Uint64Var(&o.maxLag, "max-follower-lag", backupd.DefaultMaxLag, "raft entries a follower may trail the leader and still be chosen")
	f.StringVar(&o.holder, "holder", "", "this daemon's name in the lock and the state, unique per process (default backupd@host:pid)")
	f.DurationVar(&o.lockTTL, "lock-ttl", backupd.DefaultLockTTL, "expiry of the prefix's lock; refreshed every third of it")
}

func (o *backupOptions) runner(e *env, cmd *cobra.Command) (*backupd.Runner, error) {
	err := etcdflags.ApplyEnv(cmd.Flags(), etcdflags.NonEmpty(e.getenv))
	if err != nil {
		return nil, usage(err)
	}
	// A daemon has no one to ask for a password.
	cc, err := o.conn.Config(nil)
	if err != nil {
		return nil, usage(err)
	}
	rs, names, err := codec.ParseRecipients(o.encryptTo, o.recipients)
	if err != nil {
		return nil, usage(err)
	}
	co := codec.Options{Codec: o.compression, Level: o.level, Recipients: rs, RecipientNames: names}
	if err := co.Check(); err != nil {
		return nil, usage(err)
	}
	s, err := e.openStore(cmd.Context())
	if err != nil {
		return nil, err
	}
	holder := o.holder
	if holder == "" {
		holder = defaultHolder("backupd")
	}
	return &backupd.Runner{
		Config: &backupd.Config{Client: cc, Store: s, Codec: co, SpoolDir: e.spoolDir, MaxLag: o.maxLag,
			Retry: backupd.DefaultRetry, Logger: e.logger},
		Holder: holder, LockTTL: o.lockTTL,
	}, nil
}

// defaultHolder names this process in the lock: unique per host and pid.
func defaultHolder(what string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s:%d", what, host, os.Getpid())
}

// retentionOptions are the policy's flags.
type retentionOptions struct {
	within                      time.Duration
	last, hourly, daily, weekly int
	grace                       time.Duration
}

func (o *retentionOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.DurationVar(&o.within, "retention", 48*time.Hour, "keep every backup younger than this")
	f.IntVar(&o.last, "keep-last", 0, "also keep the newest N backups")
	f.IntVar(&o.hourly, "keep-hourly", 0, "also keep the newest backup of each of the last N hours")
	f.IntVar(&o.daily, "keep-daily", 0, "also keep the newest backup of each of the last N days (UTC)")
	f.IntVar(&o.weekly, "keep-weekly", 0, "also keep the newest backup of each of the last N ISO weeks")
	f.DurationVar(&o.grace, "orphan-grace", backupd.DefaultOrphanGrace, "remove objects of no committed backup once older than this")
}

func (o *retentionOptions) apply(r *backupd.Runner) error {
	if o.within < 0 || o.last < 0 || o.hourly < 0 || o.daily < 0 || o.weekly < 0 || o.grace <= 0 {
		return usage(fmt.Errorf("retention values must not be negative, and --orphan-grace must be positive"))
	}
	r.Policy = retention.Policy{Within: o.within, Last: o.last, Hourly: o.hourly, Daily: o.daily, Weekly: o.weekly}
	r.Grace = o.grace
	return nil
}
