package cli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/backupd"
	"github.com/lifeboat-dev/lifeboat/backupd/codec"
	"github.com/lifeboat-dev/lifeboat/backupd/retention"
)

// connOptions are etcdctl's connection flags, with its ETCDCTL_* variables.
type connOptions struct {
	endpoints    []string
	dialTimeout  time.Duration
	cacert       string
	cert         string
	key          string
	user         string
	password     string
	insecureSkip bool
}

func (o *connOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSliceVar(&o.endpoints, "endpoints", nil, "the cluster's client endpoints (env ETCDCTL_ENDPOINTS; default 127.0.0.1:2379)")
	f.DurationVar(&o.dialTimeout, "dial-timeout", 0, "dial timeout (env ETCDCTL_DIAL_TIMEOUT; default 2s)")
	f.StringVar(&o.cacert, "cacert", "", "verify the servers with this CA bundle (env ETCDCTL_CACERT)")
	f.StringVar(&o.cert, "cert", "", "client TLS certificate (env ETCDCTL_CERT)")
	f.StringVar(&o.key, "key", "", "client TLS key (env ETCDCTL_KEY)")
	f.StringVar(&o.user, "user", "", "username[:password] (env ETCDCTL_USER)")
	f.StringVar(&o.password, "password", "", "password (env ETCDCTL_PASSWORD)")
	f.BoolVar(&o.insecureSkip, "insecure-skip-tls-verify", false, "do not verify the servers' certificates (env ETCDCTL_INSECURE_SKIP_TLS_VERIFY)")
}

// config builds a clientv3 config; flags win over ETCDCTL_* variables.
func (o *connOptions) config(e *env) (clientv3.Config, error) {
	fromEnv := func(v *string, name string) {
		if *v == "" {
			*v = e.getenv(name)
		}
	}
	if len(o.endpoints) == 0 {
		if v := e.getenv("ETCDCTL_ENDPOINTS"); v != "" {
			o.endpoints = strings.Split(v, ",")
		} else {
			o.endpoints = []string{"127.0.0.1:2379"}
		}
	}
	fromEnv(&o.cacert, "ETCDCTL_CACERT")
	fromEnv(&o.cert, "ETCDCTL_CERT")
	fromEnv(&o.key, "ETCDCTL_KEY")
	fromEnv(&o.user, "ETCDCTL_USER")
	fromEnv(&o.password, "ETCDCTL_PASSWORD")
	if o.dialTimeout == 0 {
		o.dialTimeout = 2 * time.Second
		if v := e.getenv("ETCDCTL_DIAL_TIMEOUT"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return clientv3.Config{}, fmt.Errorf("ETCDCTL_DIAL_TIMEOUT: %w", err)
			}
			o.dialTimeout = d
		}
	}
	if !o.insecureSkip && e.getenv("ETCDCTL_INSECURE_SKIP_TLS_VERIFY") == "true" {
		o.insecureSkip = true
	}
	cfg := clientv3.Config{Endpoints: o.endpoints, DialTimeout: o.dialTimeout}
	if o.user != "" {
		user, pass, ok := strings.Cut(o.user, ":")
		if !ok {
			pass = o.password
		}
		cfg.Username, cfg.Password = user, pass
	}
	if o.cacert != "" || o.cert != "" || o.key != "" || o.insecureSkip {
		if (o.cert == "") != (o.key == "") {
			return clientv3.Config{}, fmt.Errorf("--cert and --key go together")
		}
		info := transport.TLSInfo{CertFile: o.cert, KeyFile: o.key, TrustedCAFile: o.cacert, InsecureSkipVerify: o.insecureSkip}
		tc, err := info.ClientConfig()
		if err != nil {
			return clientv3.Config{}, fmt.Errorf("TLS: %w", err)
		}
		cfg.TLS = tc
	}
	return cfg, nil
}

// backupOptions choose how a backup is taken and stored.
type backupOptions struct {
	conn        connOptions
	compression string
	level       int
	encryptTo   []string
	recipients  []string
	maxLag      uint64
	holder      string
	lockTTL     time.Duration
}

func (o *backupOptions) AddFlags(cmd *cobra.Command) {
	o.conn.AddFlags(cmd)
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
	cc, err := o.conn.config(e)
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
