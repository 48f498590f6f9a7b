package bench

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string // empty: valid
	}{
		{"default", func(*Config) {}, ""},
		{"no endpoints", func(c *Config) { c.Endpoints = nil }, "no endpoints"},
		{"unknown workload", func(c *Config) { c.Workload = "scan" }, `unknown workload "scan"`},
		{"zero clients", func(c *Config) { c.Clients = 0 }, "clients 0 out of range"},
		{"more conns than clients", func(c *Config) { c.Clients, c.Conns = 4, 5 }, "conns 5 out of range [1, clients=4]"},
		{"unbounded total", func(c *Config) { c.Total = 0 }, "total 0 out of range"},
		{"unbounded duration", func(c *Config) { c.Duration = 0 }, "duration 0s out of range"},
		{"key too short for key space", func(c *Config) { c.KeySize, c.KeySpace = 3, 1001 }, "key size 3 cannot hold 1001 distinct keys (needs 4 bytes)"},
		{"key exactly long enough", func(c *Config) { c.KeySize, c.KeySpace = 3, 1000 }, ""},
		{"negative value size", func(c *Config) { c.ValSize = -1 }, "value size -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestKey(t *testing.T) {
	c := Config{KeySize: 6}
	for n, want := range map[int]string{0: "000000", 42: "000042", 999999: "999999"} {
		if got := c.key(n); got != want {
			t.Errorf("key(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestDistribution(t *testing.T) {
	tests := []struct {
		name string
		ms   []int
		want Latency
	}{
		{"empty", nil, Latency{}},
		{"one", []int{7}, Latency{Mean: 7, P50: 7, P90: 7, P99: 7, Max: 7}},
		// 1..100 ms shuffled: nearest rank gives the percentile itself.
		{"hundred", permutation(100), Latency{Mean: 50.5, P50: 50, P90: 90, P99: 99, Max: 100}},
		{"ten", []int{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, Latency{Mean: 5.5, P50: 5, P90: 9, P99: 10, Max: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lats := make([]time.Duration, len(tt.ms))
			for i, m := range tt.ms {
				lats[i] = time.Duration(m) * time.Millisecond
			}
			if got := distribution(lats); got != tt.want {
				t.Fatalf("distribution = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// permutation returns 1..n in a fixed scrambled order.
func permutation(n int) []int {
	out := make([]int, n)
	for i := range n {
		out[i] = (i*37)%n + 1
	}
	return out
}

func TestRatios(t *testing.T) {
	rep := func(ops, p99 float64) *Report { return &Report{Throughput: ops, Latency: Latency{P99: p99}} }
	results := []SystemResult{
		{System: SystemEtcd, Members: 1, Workload: Put, Clients: 64, Report: rep(16000, 10), CPU: 100},
		{System: SystemLifeboat, Members: 1, Workload: Put, Clients: 64, Report: rep(8000, 20), CPU: 80},
		{System: SystemEtcd, Members: 3, Workload: Put, Clients: 64, Report: rep(10000, 30)},
		{System: SystemLifeboat, Members: 3, Workload: Put, Clients: 64, Error: "no leader"},
	}
	want := []Ratio{
		{Members: 1, Workload: Put, Clients: 64, EtcdOps: 16000, LifeboatOps: 8000, OpsRatio: 0.5, EtcdP99: 10, LifeboatP99: 20, P99Ratio: 2,
			EtcdCPU: 100, LifeboatCPU: 80, CPURatio: 0.8},
		{Members: 3, Workload: Put, Clients: 64, EtcdOps: 10000, EtcdP99: 30, LifeboatError: "no leader"},
	}
	got := ratios(results)
	if len(got) != len(want) {
		t.Fatalf("ratios = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestRunAgainstEtcd runs every workload against a real etcd member and
// checks that the requests did what they say.
func TestRunAgainstEtcd(t *testing.T) {
	c := interoptest.StartEtcd(t, interoptest.Options{})
	for _, w := range Workloads {
		t.Run(string(w), func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Endpoints = c.Endpoints()
			cfg.Workload = w
			cfg.Clients, cfg.Conns = 8, 2
			cfg.Total, cfg.Duration = 300, 2*time.Minute
			cfg.KeySize, cfg.KeySpace = 5, 50
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Stopped != "total" || rep.Requests != cfg.Total || rep.Errors != 0 {
				t.Fatalf("stopped by %s after %d requests and %d errors (%s), want all %d requests", rep.Stopped, rep.Requests, rep.Errors, rep.FirstError, cfg.Total)
			}
			if l := rep.Latency; !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
				t.Fatalf("latency %+v is not an ordered distribution", l)
			}
			checkKeys(t, c.Endpoints(), cfg)
		})
	}
}

// checkKeys checks that only keys of the key space, with the configured
// value, exist.
func checkKeys(t *testing.T, endpoints []string, cfg Config) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 || len(resp.Kvs) > cfg.KeySpace {
		t.Fatalf("%d keys after the run, want 1..%d", len(resp.Kvs), cfg.KeySpace)
	}
	for _, kv := range resp.Kvs {
		if len(kv.Key) != cfg.KeySize || len(kv.Value) != cfg.ValSize {
			t.Fatalf("key %q has %d value bytes; want %d-byte keys with %d-byte values", kv.Key, len(kv.Value), cfg.KeySize, cfg.ValSize)
		}
	}
}

func TestRunUnreachable(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Endpoints = []string{"127.0.0.1:1"}
	cfg.Clients, cfg.Conns, cfg.Total = 1, 1, 1
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Run on a closed port = %v, want an error naming the endpoint", err)
	}
}

// benchmark runs b.N requests (bounded by MaxTotal and a minute) of w against
// a real etcd member and reports the harness's own figures.
func benchmark(b *testing.B, w Workload, clients int) {
	c := interoptest.StartEtcd(b, interoptest.Options{})
	cfg := DefaultConfig()
	cfg.Endpoints = c.Endpoints()
	cfg.Workload = w
	cfg.Clients, cfg.Conns = clients, (clients+7)/8
	cfg.Total, cfg.Duration = min(b.N, MaxTotal), time.Minute
	cfg.KeySpace = 10_000
	b.SetBytes(int64(cfg.KeySize + cfg.ValSize))
	b.ResetTimer()
	rep, err := Run(context.Background(), cfg)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.Throughput, "ops/s")
	b.ReportMetric(rep.Latency.P99, "p99-ms")
	if rep.Errors > 0 {
		b.Fatalf("%d requests failed; first: %s", rep.Errors, rep.FirstError)
	}
}

func BenchmarkPut1Client(b *testing.B)                 { benchmark(b, Put, 1) }
func BenchmarkPut64Clients(b *testing.B)               { benchmark(b, Put, 64) }
func BenchmarkPut256Clients(b *testing.B)              { benchmark(b, Put, 256) }
func BenchmarkRange64Clients(b *testing.B)             { benchmark(b, Range, 64) }
func BenchmarkRangeSerializable64Clients(b *testing.B) { benchmark(b, RangeSerializable, 64) }
func BenchmarkTxn64Clients(b *testing.B)               { benchmark(b, Txn, 64) }

func TestMedian(t *testing.T) {
	rep := func(ops float64) *Report { return &Report{Throughput: ops} }
	tests := []struct {
		name    string
		ops     []float64
		wantOps float64
	}{
		{"one", []float64{5}, 5},
		{"three", []float64{9, 1, 5}, 5},
		{"two takes the upper", []float64{1, 9}, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reports []*Report
			for _, o := range tt.ops {
				reports = append(reports, rep(o))
			}
			got, rounds := median(reports)
			if got.Throughput != tt.wantOps || !slices.Equal(rounds, tt.ops) {
				t.Fatalf("median = %v, rounds %v; want %v and the rounds in run order %v", got.Throughput, rounds, tt.wantOps, tt.ops)
			}
		})
	}
}

// TestCompareEtcdWithItself runs the whole comparison with real etcd on both
// sides: both clusters start, every cell has both figures and a ratio.
func TestCompareEtcdWithItself(t *testing.T) {
	etcd := interoptest.Binary(t, "etcd")
	cfg := DefaultCompareConfig()
	cfg.EtcdBinary, cfg.LifeboatBinary = etcd, etcd
	cfg.Members, cfg.Clients, cfg.Workloads = []int{1}, []int{1, 4}, []Workload{Put, Range}
	cfg.Rounds, cfg.Total, cfg.Duration, cfg.KeySpace = 2, 50, time.Minute, 20
	cfg.Dir = t.TempDir()
	c, err := Compare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rows) != 4 || len(c.Results) != 8 {
		t.Fatalf("%d rows and %d results, want 4 and 8", len(c.Rows), len(c.Results))
	}
	for _, r := range c.Results {
		if r.Error != "" || r.Report == nil || len(r.Rounds) != 2 || r.Report.Requests != 50 {
			t.Errorf("%s %s %d clients: error %q, rounds %v, report %+v; want 2 rounds of 50 requests", r.System, r.Workload, r.Clients, r.Error, r.Rounds, r.Report)
		}
	}
	for _, row := range c.Rows {
		if row.OpsRatio <= 0 || row.P99Ratio <= 0 {
			t.Errorf("row %+v has no ratio", row)
		}
	}
	var table strings.Builder
	if err := WriteCompareTable(&table, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "median of 2 rounds") {
		t.Errorf("table does not say how it was measured:\n%s", table.String())
	}
}

// TestCompareSecured runs a secured comparison (etcd against itself): with
// client TLS and with auth enabled every run connects and succeeds.
func TestCompareSecured(t *testing.T) {
	etcd := interoptest.Binary(t, "etcd")
	for _, sec := range []Security{ClientTLS, Auth} {
		t.Run(string(sec), func(t *testing.T) {
			cfg := DefaultCompareConfig()
			cfg.EtcdBinary, cfg.Security = etcd, sec
			cfg.Members, cfg.Clients, cfg.Workloads = []int{1}, []int{2}, []Workload{Put}
			cfg.Rounds, cfg.Total, cfg.Duration, cfg.KeySpace = 1, 20, time.Minute, 10
			cfg.Dir = t.TempDir()
			c, err := Compare(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Results) != 1 || c.Results[0].Error != "" || c.Results[0].Report == nil || c.Results[0].Report.Requests != 20 {
				t.Fatalf("results %+v", c.Results)
			}
			if c.Config.Security != string(sec) {
				t.Fatalf("summary security %q", c.Config.Security)
			}
		})
	}
	if _, err := ParseSecurity("mtls"); err == nil {
		t.Fatal("unknown security accepted")
	}
}
