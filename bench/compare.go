package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
)

// The systems Compare runs, in this order.
const (
	SystemEtcd     = "etcd"
	SystemLifeboat = "lifeboat"
)

// CompareConfig describes a side-by-side run of etcd and lifeboat.
type CompareConfig struct {
	EtcdBinary     string // real etcd v3.6
	LifeboatBinary string // empty: etcd only, lifeboat's cells stay empty
	Members        []int  // cluster sizes, each on fresh data dirs
	Clients        []int
	Workloads      []Workload
	// Rounds is how many times each cell runs per system; the median
	// (by throughput) is kept. 0 means 1.
	Rounds int
	// Conns is the gRPC connection count; 0 means ceil(clients/8).
	Conns    int
	Total    int           // per run
	Duration time.Duration // per run
	KeySize  int
	ValSize  int
	KeySpace int
	// Dir holds the data dirs; empty means a new temp dir, removed at the end.
	Dir string
	// StartTimeout bounds a cluster's start; 0 means 60s.
	StartTimeout time.Duration
	// Log receives one line per run as it finishes; nil discards them.
	Log io.Writer
	// Security is none (default), tls or auth for both systems.
	Security Security
}

// DefaultCompareConfig runs put, range and txn at 1, 64 and 256 clients on
// one and three members.
func DefaultCompareConfig() CompareConfig {
	d := DefaultConfig()
	return CompareConfig{
		Members:   []int{1, 3},
		Clients:   []int{1, 64, 256},
		Workloads: []Workload{Put, Range, Txn},
		Rounds:    3,
		Total:     100_000,
		Duration:  5 * time.Second,
		KeySize:   d.KeySize,
		ValSize:   d.ValSize,
		KeySpace:  10_000,
	}
}

// Comparison is the outcome of Compare.
type Comparison struct {
	Date    string         `json:"date"`
	Machine Machine        `json:"machine"`
	Config  compareSummary `json:"config"`
	Results []SystemResult `json:"results"`
	Rows    []Ratio        `json:"ratios"`
}

// Machine says where the figures were measured.
type Machine struct {
	OS   string `json:"os"`
	Arch string `json:"arch"`
	CPUs int    `json:"cpus"`
	CPU  string `json:"cpu,omitempty"`
	Go   string `json:"go"`
}

type compareSummary struct {
	EtcdBinary     string  `json:"etcd_binary"`
	LifeboatBinary string  `json:"lifeboat_binary"`
	Total          int     `json:"total_per_run"`
	DurationSec    float64 `json:"duration_per_run_s"`
	Rounds         int     `json:"rounds"`
	KeySize        int     `json:"key_size"`
	ValSize        int     `json:"val_size"`
	KeySpace       int     `json:"key_space"`
	Security       string  `json:"security"`
}

// SystemResult is one run against one system; Error is set instead of
// Report when the run (or the cluster) failed.
type SystemResult struct {
	System   string    `json:"system"`
	Members  int       `json:"members"`
	Workload Workload  `json:"workload"`
	Clients  int       `json:"clients"`
	Report   *Report   `json:"report,omitempty"` // the median round
	Rounds   []float64 `json:"rounds_ops_per_s,omitempty"`
	// RoundsCPU is every round's server CPU per request (µs), in run order,
	// where it was measured (Linux); CPU its median.
	RoundsCPU []float64 `json:"rounds_server_cpu_us_per_request,omitempty"`
	CPU       float64   `json:"server_cpu_us_per_request,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// Ratio sets lifeboat's figures beside etcd's for one cell; a ratio is 0
// when either side is missing.
type Ratio struct {
	Members       int      `json:"members"`
	Workload      Workload `json:"workload"`
	Clients       int      `json:"clients"`
	EtcdOps       float64  `json:"etcd_ops_per_s"`
	LifeboatOps   float64  `json:"lifeboat_ops_per_s"`
	OpsRatio      float64  `json:"ops_ratio"`
	EtcdP99       float64  `json:"etcd_p99_ms"`
	LifeboatP99   float64  `json:"lifeboat_p99_ms"`
	P99Ratio      float64  `json:"p99_ratio"`
	EtcdCPU       float64  `json:"etcd_server_cpu_us_per_request,omitempty"`
	LifeboatCPU   float64  `json:"lifeboat_server_cpu_us_per_request,omitempty"`
	CPURatio      float64  `json:"server_cpu_ratio,omitempty"`
	LifeboatError string   `json:"lifeboat_error,omitempty"`
}

func (c CompareConfig) validate() error {
	var errs []error
	if c.EtcdBinary == "" {
		errs = append(errs, errors.New("bench: compare needs the etcd binary"))
	}
	for _, bin := range []string{c.EtcdBinary, c.LifeboatBinary} {
		if bin == "" {
			continue
		}
		if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
			errs = append(errs, fmt.Errorf("bench: %s is not an executable (%v)", bin, err))
		}
	}
	if len(c.Members) == 0 || len(c.Clients) == 0 || len(c.Workloads) == 0 {
		errs = append(errs, errors.New("bench: compare needs members, clients and workloads"))
	}
	if c.Rounds < 0 || c.Rounds > 100 {
		errs = append(errs, fmt.Errorf("bench: rounds %d out of range [0, 100]", c.Rounds))
	}
	for _, m := range c.Members {
		if m < 1 || m > 7 {
			errs = append(errs, fmt.Errorf("bench: cluster size %d out of range [1, 7]", m))
		}
	}
	for _, n := range c.Clients {
		errs = append(errs, c.run([]string{"leader"}, Put, n).Validate())
	}
	return errors.Join(errs...)
}

// run is the Config of one cell.
func (c CompareConfig) run(endpoints []string, w Workload, clients int) Config {
	conns := c.Conns
	if conns == 0 {
		conns = (clients + 7) / 8
	}
	return Config{
		Endpoints: endpoints, Workload: w, Clients: clients, Conns: min(conns, clients),
		Total: c.Total, Duration: c.Duration,
		KeySize: c.KeySize, ValSize: c.ValSize, KeySpace: c.KeySpace,
	}
}

// Compare starts, for each cluster size, both systems on fresh data dirs,
// then runs every cell (workload and client count) Rounds times against the
// leader's endpoint, alternating etcd and lifeboat so that both see the same
// background load, and keeps each system's median round. A system that
// fails to start, or a run that fails, is recorded in its cells; Compare
// itself fails only on a bad config or a canceled ctx.
func Compare(ctx context.Context, cfg CompareConfig) (*Comparison, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = 1
	}
	root := cfg.Dir
	if root == "" {
		dir, err := os.MkdirTemp("", "lifeboat-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(dir)
		root = dir
	}
	out := &Comparison{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: machine(),
		Config: compareSummary{
			EtcdBinary: cfg.EtcdBinary, LifeboatBinary: cfg.LifeboatBinary,
			Total: cfg.Total, DurationSec: cfg.Duration.Seconds(), Rounds: cfg.Rounds,
			KeySize: cfg.KeySize, ValSize: cfg.ValSize, KeySpace: cfg.KeySpace,
			Security: string(cfg.security()),
		},
	}
	for _, members := range cfg.Members {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bench: compare: %w", err)
		}
		out.Results = append(out.Results, cfg.size(ctx, root, members)...)
	}
	out.Rows = ratios(out.Results)
	return out, nil
}

func (c CompareConfig) security() Security {
	if c.Security == "" {
		return NoSecurity
	}
	return c.Security
}

// running is one started system of a comparison.
type running struct {
	name    string
	leader  string            // client endpoint of the leader
	err     error             // why it is not running
	cluster *etcdproc.Cluster // nil when not running
	sec     secured
}

// size runs every cell against both systems of one cluster size.
func (cfg CompareConfig) size(ctx context.Context, root string, members int) []SystemResult {
	var systems []*running
	for _, sys := range []struct{ name, bin string }{{SystemEtcd, cfg.EtcdBinary}, {SystemLifeboat, cfg.LifeboatBinary}} {
		if sys.bin == "" {
			continue
		}
		r := &running{name: sys.name}
		dir := filepath.Join(root, fmt.Sprintf("%s-%d", sys.name, members))
		r.leader, r.cluster, r.sec, r.err = cfg.startCluster(ctx, sys.bin, members, dir)
		if r.err != nil {
			fmt.Fprintf(cfg.Log, "%s x%d: %v\n", sys.name, members, r.err)
		} else {
			defer func() {
				if err := r.cluster.Stop(); err != nil {
					fmt.Fprintf(cfg.Log, "%s x%d: stopping: %v\n", r.name, members, err)
				}
				os.RemoveAll(dir)
			}()
		}
		systems = append(systems, r)
	}
	var out []SystemResult
	for _, w := range cfg.Workloads {
		for _, n := range cfg.Clients {
			rounds := make([][]*Report, len(systems))
			errs := make([]error, len(systems))
			for round := range cfg.Rounds {
				for i, sys := range systems {
					if sys.err != nil || errs[i] != nil {
						continue
					}
					rc := cfg.run([]string{sys.leader}, w, n)
					rc.TLS, rc.Username, rc.Password = sys.sec.tls, sys.sec.username, sys.sec.password
					if cpuMeasured() {
						rc.ServerCPU = func() (time.Duration, error) { return clusterCPU(sys.cluster) }
					}
					rep, err := Run(ctx, rc)
					if err != nil {
						errs[i] = err
						fmt.Fprintf(cfg.Log, "%s x%d %s %d clients: %v\n", sys.name, members, w, n, err)
						continue
					}
					rounds[i] = append(rounds[i], rep)
					fmt.Fprintf(cfg.Log, "%s x%d %s %d clients, round %d: %.0f ops/s, p99 %.2f ms, %d errors%s\n", sys.name, members, w, n, round+1, rep.Throughput, rep.Latency.P99, rep.Errors, cpuNote(rep))
				}
			}
			for i, sys := range systems {
				r := SystemResult{System: sys.name, Members: members, Workload: w, Clients: n}
				switch {
				case sys.err != nil:
					r.Error = sys.err.Error()
				case errs[i] != nil:
					r.Error = errs[i].Error()
				default:
					r.Report, r.Rounds = median(rounds[i])
					r.RoundsCPU, r.CPU = cpuRounds(rounds[i])
				}
				out = append(out, r)
			}
		}
	}
	return out
}

// median returns the report of median throughput and every round's
// throughput, in run order.
func median(reports []*Report) (*Report, []float64) {
	ops := make([]float64, len(reports))
	for i, r := range reports {
		ops[i] = r.Throughput
	}
	sorted := slices.Clone(reports)
	slices.SortFunc(sorted, func(a, b *Report) int { return cmp.Compare(a.Throughput, b.Throughput) })
	return sorted[len(sorted)/2], ops
}

// cpuRounds is every round's server CPU per request and their median; nil
// and 0 when it was not measured.
func cpuRounds(reports []*Report) ([]float64, float64) {
	var cpu []float64
	for _, r := range reports {
		if r.ServerCPUPerRequest > 0 {
			cpu = append(cpu, r.ServerCPUPerRequest)
		}
	}
	if len(cpu) == 0 {
		return nil, 0
	}
	sorted := slices.Clone(cpu)
	slices.Sort(sorted)
	return cpu, sorted[len(sorted)/2]
}

func cpuNote(r *Report) string {
	if r.ServerCPUPerRequest == 0 {
		return ""
	}
	return fmt.Sprintf(", server CPU %.0f µs/request", r.ServerCPUPerRequest)
}

// startCluster starts a cluster of the binary (etcd's flags), secured as
// cfg.Security says, and returns the leader's client endpoint, the
// cluster and what the runs need to connect.
func (cfg CompareConfig) startCluster(ctx context.Context, bin string, members int, dir string) (string, *etcdproc.Cluster, secured, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, secured{}, fmt.Errorf("bench: %w", err)
	}
	sec, err := cfg.security().prepare(filepath.Join(dir, "certs"))
	if err != nil {
		return "", nil, secured{}, err
	}
	c, err := etcdproc.New(dir, etcdproc.Options{Members: members, Binary: bin, Token: "lifeboat-bench", TLS: sec.files})
	if err != nil {
		return "", nil, secured{}, fmt.Errorf("laying out %d members of %s: %w", members, bin, err)
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.Start(sctx); err != nil {
		return "", nil, secured{}, errors.Join(fmt.Errorf("starting %d members of %s: %w", members, bin, err), c.Stop())
	}
	if err := sec.enable(sctx, c.Endpoints()); err != nil {
		return "", nil, secured{}, errors.Join(err, c.Stop())
	}
	leader, err := findLeader(sctx, c.Endpoints(), sec)
	if err != nil {
		return "", nil, secured{}, errors.Join(err, c.Stop())
	}
	return leader, c, sec, nil
}

// findLeader asks each endpoint for its status until one says it leads.
func findLeader(ctx context.Context, endpoints []string, sec secured) (string, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Context: ctx,
		TLS: sec.tls, Username: sec.username, Password: sec.password})
	if err != nil {
		return "", fmt.Errorf("bench: connecting to %s: %w", strings.Join(endpoints, ","), err)
	}
	defer cli.Close()
	var last error
	for ctx.Err() == nil {
		for _, ep := range endpoints {
			st, err := cli.Status(ctx, ep)
			if err != nil {
				last = err
				continue
			}
			if st.Leader != 0 && st.Leader == st.Header.GetMemberId() {
				return ep, nil
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return "", fmt.Errorf("bench: no leader among %s: %w (last status error: %v)", strings.Join(endpoints, ","), ctx.Err(), last)
}

// ratios pairs each etcd cell with lifeboat's.
func ratios(results []SystemResult) []Ratio {
	type cell struct {
		members  int
		workload Workload
		clients  int
	}
	lb := map[cell]SystemResult{}
	for _, r := range results {
		if r.System == SystemLifeboat {
			lb[cell{r.Members, r.Workload, r.Clients}] = r
		}
	}
	var rows []Ratio
	for _, e := range results {
		if e.System != SystemEtcd {
			continue
		}
		row := Ratio{Members: e.Members, Workload: e.Workload, Clients: e.Clients}
		if e.Report != nil {
			row.EtcdOps, row.EtcdP99 = e.Report.Throughput, e.Report.Latency.P99
		}
		l := lb[cell{e.Members, e.Workload, e.Clients}]
		row.LifeboatError = l.Error
		if l.Report != nil {
			row.LifeboatOps, row.LifeboatP99 = l.Report.Throughput, l.Report.Latency.P99
		}
		row.EtcdCPU, row.LifeboatCPU = e.CPU, l.CPU
		row.OpsRatio = ratio(row.LifeboatOps, row.EtcdOps)
		row.P99Ratio = ratio(row.LifeboatP99, row.EtcdP99)
		row.CPURatio = ratio(row.LifeboatCPU, row.EtcdCPU)
		rows = append(rows, row)
	}
	return rows
}

func ratio(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a / b
}

// WriteCompareTable writes one row per cell, then every error in full.
func WriteCompareTable(w io.Writer, c *Comparison) error {
	fmt.Fprintf(w, "%s, %s/%s, %d CPUs %s, %s; %d requests or %.0fs per run, median of %d rounds, key %d B, value %d B, key space %d, security %s\n",
		c.Date, c.Machine.OS, c.Machine.Arch, c.Machine.CPUs, c.Machine.CPU, c.Machine.Go,
		c.Config.Total, c.Config.DurationSec, c.Config.Rounds, c.Config.KeySize, c.Config.ValSize, c.Config.KeySpace, c.Config.Security)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "MEMBERS\tWORKLOAD\tCLIENTS\tETCD OPS/S\tLIFEBOAT OPS/S\tRATIO\tETCD P99 ms\tLIFEBOAT P99 ms\tRATIO\tETCD CPU µs/req\tLIFEBOAT CPU µs/req\tRATIO\t")
	num := func(v float64, format string) string {
		if v == 0 {
			return "-"
		}
		return fmt.Sprintf(format, v)
	}
	for _, r := range c.Rows {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Members, r.Workload, r.Clients,
			num(r.EtcdOps, "%.0f"), num(r.LifeboatOps, "%.0f"), num(r.OpsRatio, "%.2f"),
			num(r.EtcdP99, "%.1f"), num(r.LifeboatP99, "%.1f"), num(r.P99Ratio, "%.2f"),
			num(r.EtcdCPU, "%.0f"), num(r.LifeboatCPU, "%.0f"), num(r.CPURatio, "%.2f"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: writing table: %w", err)
	}
	seen := map[string]bool{}
	for _, r := range c.Results {
		if r.Error != "" && !seen[r.System+r.Error] {
			seen[r.System+r.Error] = true
			fmt.Fprintf(w, "%s x%d %s %d clients: %s\n", r.System, r.Members, r.Workload, r.Clients, r.Error)
		}
	}
	return nil
}

func machine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return m
}
