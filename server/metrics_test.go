package server

import (
	"bufio"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads a member's /metrics.
func scrape(t *testing.T, endpoint string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(endpoint + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// gaugeValue is the value of a single-series gauge or counter.
func gaugeValue(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok || len(f.Metric) != 1 {
		t.Fatalf("metric %s: %v", name, f)
	}
	m := f.Metric[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	t.Fatalf("metric %s is neither gauge nor counter", name)
	return 0
}

// mixinMetrics are the names etcd's alert rules and dashboard use
// (testdata/etcd-mixin-metrics.txt, extracted from etcd's contrib/mixin).
func mixinMetrics(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("testdata/etcd-mixin-metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			names = append(names, l)
		}
	}
	if len(names) < 15 {
		t.Fatalf("only %d names in the mixin list", len(names))
	}
	return names
}

// TestMetricsOfEtcdMixin checks that a member exposes every metric etcd's
// own alert rules and Grafana dashboard read (with --metrics extensive,
// which etcd also needs for grpc_server_handling_seconds), and the ones
// that carry versions and the key count.
func TestMetricsOfEtcdMixin(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.Metrics = "extensive" })
	lead := c.waitLeader()
	cli := c.client(lead)
	putKeys(t, cli, "m", 3)
	ep := c.endpoint(lead)
	// The peers' round trip times are probed as the peers are added.
	deadline := time.Now().Add(20 * time.Second)
	var fams map[string]*dto.MetricFamily
	for {
		fams = scrape(t, ep)
		if f := fams["etcd_network_peer_round_trip_time_seconds"]; f != nil && len(f.Metric) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no round trip time for both peers")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range mixinMetrics(t) {
		family := strings.TrimSuffix(name, "_bucket")
		f, ok := fams[family]
		if !ok || len(f.Metric) == 0 {
			t.Errorf("etcd's mixin reads %s, which the member does not expose", name)
			continue
		}
		if family != name && f.GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("%s: %s is a %s, not a histogram", name, family, f.GetType())
		}
	}
	for name, label := range map[string]string{"etcd_server_version": "server_version=" + Version, "etcd_cluster_version": "cluster_version=3.6"} {
		f := fams[name]
		if f == nil || len(f.Metric) != 1 || len(f.Metric[0].Label) != 1 ||
			f.Metric[0].Label[0].GetName()+"="+f.Metric[0].Label[0].GetValue() != label {
			t.Errorf("%s: %v, want one series labelled %s", name, f, label)
		}
	}
	if v := gaugeValue(t, fams, "etcd_server_quota_backend_bytes"); v != DefaultQuotaBackendBytes {
		t.Errorf("quota %v", v)
	}
	// A delete lowers the key count.
	before := gaugeValue(t, fams, "etcd_debugging_mvcc_keys_total")
	if _, err := cli.Delete(ctxT(t), "m000"); err != nil {
		t.Fatal(err)
	}
	if after := gaugeValue(t, scrape(t, ep), "etcd_debugging_mvcc_keys_total"); after != before-1 {
		t.Errorf("etcd_debugging_mvcc_keys_total %v after a delete, want %v", after, before-1)
	}
}
