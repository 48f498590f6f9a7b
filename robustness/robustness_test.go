package robustness

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

var (
	flagDuration  = flag.Duration("robustness.duration", 4*time.Second, "how long each scenario injects faults under traffic")
	flagFPDur     = flag.Duration("robustness.failpoint-duration", time.Second, "how long each failpoint scenario (crash-*) goes on crashing members; each crashes one at least")
	flagTotal     = flag.Duration("robustness.total", 0, "repeat rounds of every scenario until this much time has passed (default one round; env ROBUSTNESS_DURATION)")
	flagSystems   = flag.String("robustness.systems", "etcd,lifeboat,lifeboat-failpoints", "systems to run, comma-separated: etcd, lifeboat, lifeboat-failpoints (lifeboat built with -tags failpoints, for the crash-* scenarios)")
	flagScenarios = flag.String("robustness.scenarios", "", "regexp selecting scenarios by name (default all)")
	flagReport    = flag.String("robustness.report", filepath.Join("results", "robustness.txt"), "also write the table to this file (empty: none)")
	flagCheck     = flag.Duration("robustness.check-timeout", 3*time.Minute, "how long the linearizability check may take per scenario")
)

// row is one line of the run's table.
type row struct {
	round                  int
	system, scenario       string
	ops, faults, anomalies int
	lost                   int
	unverified             bool
	failed                 bool // the test failed, maybe before its checks
}

// results are the rows of every scenario run by this test process;
// TestMain prints them.
var results struct {
	sync.Mutex
	rows []row
	took time.Duration
}

// TestRobustness runs every scenario against each system (the failpoint
// scenarios against lifeboat-failpoints alone) and keeps a row of what each
// did and found for the table TestMain prints. On etcd, the control, an anomaly is
// logged and reported in the table (it shows a harness or checker fault,
// or a bug of etcd); on lifeboat it fails the test.
func TestRobustness(t *testing.T) {
	if testing.Short() {
		t.Skip("the scenarios take minutes; run without -short")
	}
	total := *flagTotal
	if env := os.Getenv("ROBUSTNESS_DURATION"); env != "" {
		d, err := time.ParseDuration(env)
		if err != nil {
			t.Fatalf("ROBUSTNESS_DURATION=%q: %v", env, err)
		}
		total = d
	}
	var pick *regexp.Regexp
	if *flagScenarios != "" {
		pick = regexp.MustCompile(*flagScenarios)
	}
	var systems []system
	for _, name := range strings.Split(*flagSystems, ",") {
		switch strings.TrimSpace(name) {
		case "etcd":
			systems = append(systems, etcdSystem)
		case "lifeboat":
			systems = append(systems, lifeboatSystem)
		case "lifeboat-failpoints":
			systems = append(systems, failpointSystem)
		default:
			t.Fatalf("-robustness.systems: unknown system %q", name)
		}
	}
	// The failpoint scenarios run on the systems with failpoints, the
	// others on the rest.
	sets := []struct {
		scenarios  []scenario
		failpoints bool
		duration   time.Duration
	}{{scenarios, false, *flagDuration}, {failpointScenarios, true, *flagFPDur}}
	start := time.Now()
	defer func() {
		results.Lock()
		results.took += time.Since(start)
		results.Unlock()
	}()
	// Every scenario runs once; rounds after the first stop when the
	// total time is up, between two scenarios.
	over := func(round int) bool { return round > 1 && time.Since(start) >= total }
	for round := 1; !over(round); round++ {
		for _, set := range sets {
			for _, sc := range set.scenarios {
				if pick != nil && !pick.MatchString(sc.name) {
					continue
				}
				for _, sys := range systems {
					if sys.failpoints != set.failpoints {
						continue
					}
					if over(round) {
						return
					}
					name := fmt.Sprintf("%s/%s", sys.name, sc.name)
					if total > 0 {
						name = fmt.Sprintf("round%d/%s", round, name)
					}
					t.Run(name, func(t *testing.T) {
						r := row{system: sys.name, scenario: sc.name}
						defer func() {
							r.round, r.failed = round, t.Failed()
							results.Lock()
							results.rows = append(results.rows, r)
							results.Unlock()
						}()
						r = runScenario(t, sys, sc, set.duration)
					})
				}
			}
		}
	}
}

// reportResults prints the table of the scenarios this process ran, if
// any, and writes it to -robustness.report: go test shows a passing
// package's output only with -v, so CI prints the file.
func reportResults() error {
	results.Lock()
	defer results.Unlock()
	if len(results.rows) == 0 {
		return nil
	}
	table := fmt.Sprintf("robustness: %d scenario runs in %v, ended %s\n%s",
		len(results.rows), results.took.Round(time.Second), time.Now().UTC().Format(time.RFC3339), formatTable(results.rows))
	fmt.Print(table)
	if *flagReport == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(*flagReport), 0o755); err != nil {
		return fmt.Errorf("robustness: writing the table: %w", err)
	}
	if err := os.WriteFile(*flagReport, []byte(table), 0o644); err != nil {
		return fmt.Errorf("robustness: writing the table: %w", err)
	}
	return nil
}

func formatTable(rows []row) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "round\tsystem\tscenario\toperations\tfaults injected\tanomalies\tlost acknowledged writes\tresult\t")
	for _, r := range rows {
		anomalies := fmt.Sprint(r.anomalies)
		if r.unverified {
			anomalies += " (check unfinished)"
		}
		result := "ok"
		if r.failed {
			result = "FAIL"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t\n", r.round, r.system, r.scenario, r.ops, r.faults, anomalies, r.lost, result)
	}
	tw.Flush()
	return b.String()
}

// env is what a scenario's faults act on.
type env struct {
	t   testing.TB
	c   *cluster
	cli *clientv3.Client // every member
	rec *Recorder
	// faults counts the faults injected.
	faults atomic.Int64
}

// scenario is one named kind of fault.
type scenario struct {
	name string
	// inject injects faults until ctx ends, then heals what it did.
	inject func(ctx context.Context, e *env)
}

// Traffic shape of every scenario.
const (
	trafficClients = 6
	watchers       = 3
)

// runScenario starts a cluster of sys, runs traffic and watches while the
// scenario injects faults for d, heals, lets the traffic run on a healthy
// cluster for a moment, reads every member's final state, and checks it
// all.
func runScenario(t *testing.T, sys system, sc scenario, d time.Duration) row {
	// On etcd, the control, an anomaly is logged (it shows a fault of the
	// harness or the checkers, or a bug of etcd); elsewhere it fails.
	report := func(a Anomaly) { t.Errorf("%v", a) }
	if sys.name == etcdSystem.name {
		report = func(a Anomaly) { t.Logf("%v", a) }
	}
	return runScenarioWith(t, sys, sc, d, report)
}

// runScenarioWith is runScenario, handing each anomaly to report.
func runScenarioWith(t *testing.T, sys system, sc scenario, d time.Duration, report func(Anomaly)) row {
	c := startCluster(t, sys)
	e := &env{t: t, c: c, cli: c.client(), rec: NewRecorder()}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	trafficCtx, stopTraffic := context.WithCancel(context.Background())
	defer stopTraffic()
	var wg sync.WaitGroup
	var clients []*Client
	for i := range trafficClients {
		clients = append(clients, NewClient(i, c.client(), e.rec))
	}
	wg.Add(2)
	go func() { defer wg.Done(); RunTraffic(trafficCtx, clients, DefaultTraffic, seed) }()
	go func() { defer wg.Done(); RunCompactor(trafficCtx, e.rec, e.cli, 2*time.Second, 200) }()
	watchCtx, stopWatches := context.WithCancel(context.Background())
	defer stopWatches()
	ws := make([]*Watcher, watchers)
	for i := range ws {
		ws[i] = &Watcher{ID: 100 + i, Rec: e.rec, Endpoints: c.endpoints, Config: DefaultWatcher, Seed: seed}
		wg.Add(1)
		go func() { defer wg.Done(); ws[i].Run(watchCtx) }()
	}

	faultCtx, stopFaults := context.WithTimeout(context.Background(), d)
	sc.inject(faultCtx, e)
	stopFaults()
	// Healed: the traffic goes on a moment on a healthy cluster, so that
	// the history ends with what the members agree on.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.waitHealthy(ctx)
	sleep(ctx, 2*time.Second)
	stopTraffic()

	finals := c.finalStates(ctx, e.cli)
	for _, w := range ws {
		w.WaitSynced(ctx, slices.MaxFunc(finals, func(a, b FinalState) int { return int(a.Rev - b.Rev) }).Rev)
	}
	stopWatches()
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the cluster did not settle after the faults: %v", ctx.Err())
	}
	// The members stop, so that their WALs can be read.
	if err := c.pc.Stop(); err != nil {
		t.Errorf("stopping the cluster: %v", err)
	}
	log, logAnomalies, err := ReadRaftLog(c.dataDirs())
	if err != nil {
		t.Logf("no raft log, so operations of unknown outcome stay open: %v", err)
	}

	h := e.rec.History()
	rep := Check(h, finals, log, *flagCheck)
	rep.Anomalies = append(logAnomalies, rep.Anomalies...)
	r := row{system: sys.name, scenario: sc.name, ops: rep.Operations, faults: int(e.faults.Load()),
		anomalies: len(rep.Anomalies), lost: rep.Lost, unverified: len(rep.Unverified) > 0}
	t.Logf("%d operations, %d watches, %d revisions watched, %d faults; %d anomalies, %d lost acknowledged writes",
		rep.Operations, rep.Watches, rep.Events, r.faults, r.anomalies, r.lost)
	for _, u := range rep.Unverified {
		t.Logf("unverified: %s", u)
	}
	for _, a := range rep.Anomalies {
		report(a)
		if a.Check == "hash" {
			c.keepData = true
		}
	}
	if len(rep.Anomalies) > 0 || len(rep.Unverified) > 0 {
		saveHistory(t, sys, sc, h, rep)
	}
	return r
}

// saveHistory writes the history and porcupine's view of a failed check
// where the test's artifacts go.
func saveHistory(t *testing.T, sys system, sc scenario, h History, rep Report) {
	base := filepath.Join(artifactDir(), fmt.Sprintf("robustness-%s-%s-%d", sys.name, sc.name, time.Now().Unix()))
	if b, err := json.MarshalIndent(h, "", " "); err != nil {
		t.Logf("saving the history: %v", err)
	} else if err := os.WriteFile(base+".json", b, 0o644); err != nil {
		t.Logf("saving the history: %v", err)
	} else {
		t.Logf("history: %s.json", base)
	}
	if rep.Linearizable.Unknown {
		return
	}
	f, err := os.Create(base + ".html")
	if err != nil {
		t.Logf("saving the history view: %v", err)
		return
	}
	defer f.Close()
	if err := rep.Linearizable.Visualize(f); err != nil {
		t.Logf("saving the history view: %v", err)
		return
	}
	t.Logf("history view: %s.html", base)
}

// waitHealthy waits until every member runs and answers /health.
func (c *cluster) waitHealthy(ctx context.Context) {
	c.t.Helper()
	for _, m := range c.members() {
		if err := m.WaitHealthy(ctx); err != nil {
			c.t.Fatal(err)
		}
	}
}

// finalStates waits until the members report the same revision, then
// reads each one's keys (serializable, from that member alone) and its
// HashKV at that revision.
func (c *cluster) finalStates(ctx context.Context, cli *clientv3.Client) []FinalState {
	c.t.Helper()
	var last string
	for ctx.Err() == nil {
		sts, err := c.statuses(ctx, cli)
		if err == nil && len(sts) == len(c.members()) && slices.IndexFunc(sts, func(s status) bool { return s.rev != sts[0].rev }) < 0 {
			break
		}
		last = fmt.Sprint(sts, err)
		sleep(ctx, 100*time.Millisecond)
	}
	if ctx.Err() != nil {
		c.t.Fatalf("the members never agreed on a revision: %s", last)
	}
	// Leases may still expire, so the members' revisions can differ by
	// now; the hash is taken at the lowest.
	var finals []FinalState
	hashRev := int64(0)
	for _, m := range c.members() {
		resp, err := c.client(hostOf(c.t, m.ClientURL)).Get(ctx, KeyPrefix, clientv3.WithRange(keyPrefixEnd), clientv3.WithSerializable())
		if err != nil {
			c.t.Fatalf("final read on %s: %v", m.Name, err)
		}
		finals = append(finals, FinalState{Member: m.Name, Rev: resp.Header.Revision, KVs: kvs(resp.Kvs)})
		if hashRev == 0 || resp.Header.Revision < hashRev {
			hashRev = resp.Header.Revision
		}
	}
	for i, m := range c.members() {
		hr, err := cli.HashKV(ctx, hostOf(c.t, m.ClientURL), hashRev)
		if err != nil {
			c.t.Fatalf("HashKV on %s: %v", m.Name, err)
		}
		finals[i].Hash, finals[i].HashRev, finals[i].HashCompactRev = hr.Hash, hashRev, hr.CompactRevision
	}
	return finals
}

// TestCheckSaved re-checks a history saved by a failed run
// (ROBUSTNESS_HISTORY=path.json), for working on a checker or a bug.
func TestCheckSaved(t *testing.T) {
	path := os.Getenv("ROBUSTNESS_HISTORY")
	if path == "" {
		t.Skip("ROBUSTNESS_HISTORY is not set")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var h History
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rep := Check(h, nil, nil, *flagCheck)
	for _, u := range rep.Unverified {
		t.Errorf("unverified: %s", u)
	}
	for _, a := range rep.Anomalies {
		t.Errorf("%v", a)
	}
}
