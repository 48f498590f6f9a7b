package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"

	"github.com/lifeboat-dev/lifeboat/server"
	"github.com/lifeboat-dev/lifeboat/snapkit/schema"
)

type demoOptions struct {
	dataDir     string
	host        string
	clientPorts []int
	peerPorts   []int
	logLevel    string
	// backup runs the backup daemon (Options.DemoBackup); nil: none.
	backup         func(ctx context.Context, b DemoBackup) error
	backupSchedule string
	noBackup       bool
}

// DefaultDemoBackupSchedule is the demo's backup schedule: fast, to be seen.
const DefaultDemoBackupSchedule = "@every 30s"

func newDemoCommand(stdout, stderr io.Writer, backup func(context.Context, DemoBackup) error) *cobra.Command {
	o := &demoOptions{backup: backup}
	cmd := &cobra.Command{
		Use:     "demo",
		Aliases: []string{"cluster"},
		Short:   "Run a local 3-member cluster in this process until Ctrl-C",
		Long: `demo starts three members on 127.0.0.1, with their data under --data-dir
(one sub-directory per member, kept between runs) and their JSON logs in
<data-dir>/demo.log. It prints the endpoints and an etcdctl command line,
then runs until SIGINT or SIGTERM, and stops the followers first and the
leader last, handing leadership to no one.

A data dir kept from a run with other --peer-ports (or --host) is refused:
its members would look for each other at the stored peer URLs. The message
says which ports it was made with. --client-ports may change between runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.clientPorts) != 3 || len(o.peerPorts) != 3 {
				return usageError{errors.New("demo: --client-ports and --peer-ports need three ports each")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.run(ctx, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", "lifeboat-demo", "directory for the members' data and the log")
	f.StringVar(&o.host, "host", "127.0.0.1", "address the members listen on")
	f.IntSliceVar(&o.clientPorts, "client-ports", []int{2379, 22379, 32379}, "client ports of the three members")
	f.IntSliceVar(&o.peerPorts, "peer-ports", []int{2380, 22380, 32380}, "peer ports of the three members")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if backup != nil {
		cmd.Long += `

Beside the cluster a backupd takes a verified backup on --backup-schedule
into file://<data-dir>/backups (its log in <data-dir>/backupd.log), as
` + "`backupd run`" + ` does; --no-backup leaves it out.`
		f.StringVar(&o.backupSchedule, "backup-schedule", DefaultDemoBackupSchedule, "backupd's schedule for the demo's backups (robfig/cron spec or @every D)")
		f.BoolVar(&o.noBackup, "no-backup", false, "run no backupd beside the cluster")
	}
	return cmd
}

func (o *demoOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	for _, p := range append(append([]int(nil), o.clientPorts...), o.peerPorts...) {
		if err := portFree(o.host, p); err != nil {
			return fmt.Errorf("demo: %w (choose others with --client-ports and --peer-ports)", err)
		}
	}
	logPath := filepath.Join(o.dataDir, "demo.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("demo: open log: %w", err)
	}
	defer logFile.Close()
	lg, _, err := newLogger(logFile, logFile, &memberOptions{logger: "zap", logLevel: o.logLevel, logOutputs: []string{"default"}, logFormat: "json"})
	if err != nil {
		return usageError{err}
	}
	cfgs := o.configs(lg)
	if err := o.checkStoredCluster(cfgs); err != nil {
		return err
	}
	members, err := startMembers(cfgs)
	stopAll := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, err := range stopMembers(sctx, members, stepDownWait(cfgs[0])) {
			fmt.Fprintf(stderr, "lifeboat demo: %v\n", err)
		}
	}
	if err != nil {
		stopAll()
		return fmt.Errorf("demo: %w (log: %s)", err, logPath)
	}
	var endpoints []string
	for _, c := range cfgs {
		endpoints = append(endpoints, c.AdvertiseClientURLs...)
	}
	fmt.Fprintf(stdout, "lifeboat demo: 3 members running, data in %s, log in %s\n", o.dataDir, logPath)
	for i, c := range cfgs {
		fmt.Fprintf(stdout, "  %s  client %s  peer %s\n", c.Name, cfgs[i].AdvertiseClientURLs[0], c.AdvertisePeerURLs[0])
	}
	fmt.Fprintf(stdout, "\ntry:\n  etcdctl --endpoints %s put hello world\n  etcdctl --endpoints %s endpoint status -w table\n",
		strings.Join(endpoints, ","), strings.Join(endpoints, ","))
	var backupDone chan error // nil: no backupd
	bctx, stopBackup := context.WithCancel(ctx)
	defer stopBackup()
	if o.backup != nil && !o.noBackup {
		b, closeLog, err := o.demoBackup(endpoints)
		if err != nil {
			stopAll()
			return err
		}
		defer closeLog()
		backupDone = make(chan error, 1)
		go func() { backupDone <- o.backup(bctx, b) }()
		fmt.Fprintf(stdout, "\nbackupd: backups on schedule %s into %s, log in %s; list them:\n  go run ./cmd/backupd list --bucket %s\n",
			o.backupSchedule, b.Bucket, filepath.Join(o.dataDir, "backupd.log"), b.Bucket)
	}
	fmt.Fprintln(stdout, "\nCtrl-C stops the cluster.")
	select {
	case <-ctx.Done():
	case err := <-backupDone:
		fmt.Fprintf(stderr, "lifeboat demo: backupd stopped: %v (log: %s); the cluster runs on\n", err, filepath.Join(o.dataDir, "backupd.log"))
		backupDone = nil
		<-ctx.Done()
	}
	fmt.Fprintln(stdout, "lifeboat demo: stopping")
	stopBackup()
	if backupDone != nil {
		<-backupDone // before the members go, so that it does not log their going as failed backups
	}
	stopAll()
	return nil
}

// demoBackup is the demo's backupd: its bucket under the data dir, and
// its log file, which the caller closes once the daemon has stopped.
func (o *demoOptions) demoBackup(endpoints []string) (DemoBackup, func(), error) {
	dir, err := filepath.Abs(filepath.Join(o.dataDir, "backups"))
	if err != nil {
		return DemoBackup{}, nil, fmt.Errorf("demo: backups: %w", err)
	}
	logPath := filepath.Join(o.dataDir, "backupd.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return DemoBackup{}, nil, fmt.Errorf("demo: open backupd's log: %w", err)
	}
	path := filepath.ToSlash(dir)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path // file:///C:/...
	}
	u := url.URL{Scheme: "file", Path: path}
	return DemoBackup{Endpoints: endpoints, Bucket: u.String(), Schedule: o.backupSchedule, Log: log}, func() { log.Close() }, nil
}

// startMembers starts the members together (each waits for a quorum of
// peers) and returns those that started, with the errors of the others.
func startMembers(cfgs []*server.Config) ([]*server.Server, error) {
	type started struct {
		s   *server.Server
		err error
	}
	results := make(chan started, len(cfgs))
	for _, c := range cfgs {
		go func() {
			s, err := server.New(c)
			results <- started{s, err}
		}()
	}
	var members []*server.Server
	var errs []error
	for range cfgs {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		members = append(members, r.s)
	}
	return members, errors.Join(errs...)
}

// stepDownWait bounds the wait for the last leader to step down: it does
// once it has heard from no quorum for an election timeout (CheckQuorum),
// which it checks every election timeout.
func stepDownWait(c *server.Config) time.Duration {
	return 3 * time.Duration(c.ElectionMs) * time.Millisecond
}

// stopMembers stops the whole cluster one member at a time, followers
// first. A leader that is stopped hands its leadership to a peer
// (Server.Stop); here every peer is stopping too, so the hand-over would
// aim at a member on its way out and fail with a warning. So the leader is
// stopped last, once alone, and after it has stepped down for want of a
// quorum (bounded by stepDown), when it no longer tries a hand-over.
// Leadership is looked at afresh before each stop, as an election can
// happen while the members go.
func stopMembers(ctx context.Context, members []*server.Server, stepDown time.Duration) []error {
	var errs []error
	rest := slices.Clone(members)
	for len(rest) > 0 {
		i := slices.IndexFunc(rest, func(s *server.Server) bool { return s.Leader() != s.ID() })
		if i < 0 {
			i = 0
			if len(rest) == 1 && len(members) > 1 {
				waitStepDown(ctx, rest[0], stepDown)
			}
		}
		if err := rest[i].Stop(ctx); err != nil {
			errs = append(errs, err)
		}
		rest = slices.Delete(rest, i, i+1)
	}
	return errs
}

// waitStepDown waits until s is no longer the leader, for at most d.
func waitStepDown(ctx context.Context, s *server.Server, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for s.Leader() == s.ID() {
		select {
		case <-ctx.Done():
			return
		case <-s.Done():
			return
		case <-t.C:
		}
	}
}

// checkStoredCluster refuses to start on data dirs whose stored membership
// has other peer URLs than cfgs ask for (the demo was run before with other
// --peer-ports or --host). The members would start, but their peers would
// be reached at the stored URLs, and a member would stay unhealthy. Client
// ports may change from run to run.
func (o *demoOptions) checkStoredCluster(cfgs []*server.Config) error {
	var asked []string
	for _, c := range cfgs {
		asked = append(asked, c.AdvertisePeerURLs...)
	}
	want := slices.Sorted(slices.Values(asked))
	for _, c := range cfgs {
		ms, err := storedMembers(c)
		if err != nil {
			return err
		}
		var have []string
		for _, m := range ms {
			have = append(have, m.PeerURLs...)
		}
		slices.Sort(have)
		if len(ms) == 0 || slices.Equal(have, want) {
			continue
		}
		return usageError{fmt.Errorf("demo: %s holds a cluster %s, and this run asks for peer URLs %s: rerun with %s, or remove %s to start a new cluster",
			o.dataDir, o.describe(ms), strings.Join(asked, ","), o.rerunFlags(ms), filepath.Clean(o.dataDir)+string(filepath.Separator))}
	}
	return nil
}

// storedMembers reads the members bucket of c's backend; none if c's data
// dir has no backend yet.
func storedMembers(c *server.Config) ([]schema.Member, error) {
	path := c.Layout().DBPath()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	db, err := schema.Open(path, schema.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("demo: reading the membership stored in %s (is a demo running on it?): %w", c.DataDir, err)
	}
	defer db.Close()
	var ms []schema.Member
	err = db.View(func(tx *bolt.Tx) error {
		ms, err = schema.Members(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("demo: reading the membership stored in %s: %w", c.DataDir, err)
	}
	return ms, nil
}

// demoPorts returns the ports of the stored members m1, m2, m3 (in that
// order) on --host, taking one URL of each from urls; false if ms is not
// such a membership.
func (o *demoOptions) demoPorts(ms []schema.Member, urls func(schema.Member) []string) ([]int, bool) {
	ports := make([]int, 3)
	if len(ms) != len(ports) {
		return nil, false
	}
	for _, m := range ms {
		var i int
		if _, err := fmt.Sscanf(m.Name, "m%d", &i); err != nil || i < 1 || i > len(ports) || ports[i-1] != 0 || len(urls(m)) != 1 {
			return nil, false
		}
		u, err := url.Parse(urls(m)[0])
		if err != nil || u.Hostname() != o.host {
			return nil, false
		}
		if ports[i-1], err = strconv.Atoi(u.Port()); err != nil {
			return nil, false
		}
	}
	return ports, true
}

func peerURLs(m schema.Member) []string   { return m.PeerURLs }
func clientURLs(m schema.Member) []string { return m.ClientURLs }

// describe says where the stored cluster is.
func (o *demoOptions) describe(ms []schema.Member) string {
	peers, ok := o.demoPorts(ms, peerURLs)
	if !ok {
		var urls []string
		for _, m := range ms {
			urls = append(urls, m.PeerURLs...)
		}
		return "with peer URLs " + strings.Join(urls, ",")
	}
	if clients, ok := o.demoPorts(ms, clientURLs); ok {
		return fmt.Sprintf("on peer ports %s (client ports %s)", joinInts(peers), joinInts(clients))
	}
	return "on peer ports " + joinInts(peers)
}

// rerunFlags are the flags that start the stored cluster again.
func (o *demoOptions) rerunFlags(ms []schema.Member) string {
	peers, ok := o.demoPorts(ms, peerURLs)
	if !ok {
		return "--host and --peer-ports matching those URLs"
	}
	flags := "--peer-ports " + joinInts(peers)
	if clients, ok := o.demoPorts(ms, clientURLs); ok {
		flags += " --client-ports " + joinInts(clients)
	}
	return flags
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// configs builds the three members' configurations.
func (o *demoOptions) configs(lg *slog.Logger) []*server.Config {
	ic := make(map[string][]string)
	for i, p := range o.peerPorts {
		ic[fmt.Sprintf("m%d", i+1)] = []string{"http://" + net.JoinHostPort(o.host, strconv.Itoa(p))}
	}
	var out []*server.Config
	for i := range 3 {
		name := fmt.Sprintf("m%d", i+1)
		c := server.NewConfig()
		c.Name = name
		c.DataDir = filepath.Join(o.dataDir, name+".etcd")
		client := "http://" + net.JoinHostPort(o.host, strconv.Itoa(o.clientPorts[i]))
		c.ListenClientURLs = []string{client}
		c.AdvertiseClientURLs = []string{client}
		c.ListenPeerURLs = ic[name]
		c.AdvertisePeerURLs = ic[name]
		c.InitialCluster = ic
		c.InitialClusterToken = "lifeboat-demo"
		c.Logger = lg.With("member", name)
		out = append(out, c)
	}
	return out
}

func portFree(host string, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d is not free: %w", port, err)
	}
	return ln.Close()
}
