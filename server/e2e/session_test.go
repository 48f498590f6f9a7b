package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

var (
	update      = flag.Bool("update", false, "rewrite testdata/*.golden from the real etcd run")
	transcripts = flag.String("transcripts", "", "also write each system's session transcript into this directory")
)

// step is one line of the etcdctl session: a command (etcdctl unless tool
// says etcdutl) or an action. Args hold {placeholders} (see session.vars).
type step struct {
	tool  string // "etcdctl" (default), "etcdutl" or "curl" (see session.curl)
	args  []string
	stdin string
	// How the output is compared, after IDs, ports and paths are replaced by
	// names: exactly by default; json parses it, blanks volatile fields and
	// checks agree fields; sort sorts its lines; norm rewrites what varies.
	json   *jsonNorm
	sort   bool
	norm   []rewrite
	stderr bool // keep stderr (minus client log lines): an expected error
	// watchLines stops a watch after it printed this many lines.
	watchLines int
	// retry repeats the command until it exits 0 (e.g. promote a learner
	// that is still catching up).
	retry bool
	// capture names an ID found in the output (see session.id).
	capture *capture
	// do is an action instead of a command; note says what it does.
	do   func(s *session)
	note string
}

// rewrite normalizes what legitimately varies in an output.
type rewrite func(string) string

func rw(expr, repl string) rewrite {
	re := regexp.MustCompile(expr)
	return func(s string) string { return re.ReplaceAllString(s, repl) }
}

type capture struct {
	name string
	re   *regexp.Regexp // first group is the value
	text bool           // the value as is (a token), else an etcd ID in hex
}

// jsonNorm says which JSON fields vary between runs (blanked) and which must
// hold the same value wherever they appear (replaced by <agree>; values that
// differ fail the step).
type jsonNorm struct {
	volatile []string
	agree    []string
	lines    bool // one element of the top-level array per line, for step.sort
}

var (
	raftVolatile   = []string{"raft_term", "raftTerm", "raftIndex", "raftAppliedIndex", "dbSize", "dbSizeInUse"}
	kvJSON         = &jsonNorm{volatile: []string{"raft_term", "member_id"}}
	took           = rw(`took \d+(\.\d+)?[µnm]?s`, "took <took>")
	fieldsVolatile = []rewrite{rw(`"MemberID" : \S+`, `"MemberID" : <member>`), rw(`"RaftTerm" : \S+`, `"RaftTerm" : <term>`)}
)

// theSession is the scripted session of the spec, run as is against real
// etcd and lifeboat. Revisions are deterministic: the comments give them.
var theSession = []step{
	{args: []string{"put", "foo", "bar"}},  // rev 2
	{args: []string{"put", "foo", "bar2"}}, // rev 3
	{args: []string{"put", "foo/a", "1"}},  // rev 4
	{args: []string{"put", "foo/b", "2"}},  // rev 5
	{args: []string{"put", "foo/c", "3"}},  // rev 6
	{args: []string{"put", "zoo", "z"}},    // rev 7
	{args: []string{"get", "foo"}},
	{args: []string{"get", "foo", "--rev=2"}},
	{args: []string{"get", "foo", "--prefix"}},
	{args: []string{"get", "foo/", "--prefix", "--keys-only"}},
	{args: []string{"get", "foo/", "--prefix", "--count-only", "-w", "fields"}, norm: fieldsVolatile},
	{args: []string{"get", "foo/", "--prefix", "--limit=2"}},
	{args: []string{"get", "foo/", "--prefix", "--sort-by=MODIFY", "--order=DESCEND"}},
	{args: []string{"get", "foo/b", "--from-key"}},
	{args: []string{"get", "foo", "--from-key", "--keys-only", "--limit=3"}},
	{args: []string{"get", "foo", "-w", "json"}, json: kvJSON},
	{args: []string{"get", "foo/", "--prefix", "--rev=5", "-w", "json"}, json: kvJSON},
	{args: []string{"get", "nothing"}},
	{args: []string{"del", "foo/a", "--prev-kv"}}, // rev 8
	{args: []string{"del", "foo/", "--prefix"}},   // rev 9
	{args: []string{"del", "nothing"}},
	{args: []string{"txn", "--interactive"}, stdin: "value(\"foo\") = \"bar2\"\nmod(\"zoo\") > \"0\"\n\nput txnkey yes\nget zoo\n\nput txnkey no\n\n"}, // rev 10
	{args: []string{"txn", "-w", "json"}, stdin: "version(\"foo\") = \"7\"\n\nput txnkey yes\n\nput txnkey no\n\n", json: kvJSON},                      // rev 11
	{args: []string{"get", "txnkey", "-w", "json"}, json: kvJSON},
	{args: []string{"watch", "foo", "--rev=2", "--prev-kv"}, watchLines: 8},
	{args: []string{"watch", "foo/", "--prefix", "--rev=4", "--prev-kv"}, watchLines: 24},
	{args: []string{"lease", "grant", "600"}, capture: &capture{name: "lease1", re: regexp.MustCompile(`lease ([0-9a-f]+) granted`)}},
	{args: []string{"put", "leased", "v", "--lease={lease1}"}}, // rev 12
	{args: []string{"lease", "keep-alive", "--once", "{lease1}"}},
	{args: []string{"lease", "timetolive", "{lease1}", "--keys"}, norm: []rewrite{rw(`remaining\(\d+s\)`, "remaining(<ttl>)")}},
	{args: []string{"lease", "list"}},
	{args: []string{"lease", "revoke", "{lease1}"}}, // rev 13
	{args: []string{"lease", "timetolive", "{lease1}"}},
	{args: []string{"get", "leased"}},
	{args: []string{"member", "list"}, sort: true},
	// etcd refuses a member change until the leader has been connected to
	// every member for 5s ("unhealthy cluster"), so this step retries.
	{args: []string{"member", "add", "m4", "--peer-urls=http://{m4-peer}", "--learner"}, retry: true,
		capture: &capture{name: "m4-id", re: regexp.MustCompile(`Member +([0-9a-f]+) added`)}, norm: []rewrite{sortInitialCluster}},
	{do: (*session).startM4, note: "start m4 as a learner with --initial-cluster-state existing"},
	{args: []string{"member", "promote", "{m4-id}"}, retry: true},
	{args: []string{"member", "list"}, sort: true},
	{args: []string{"member", "remove", "{m4-id}"}},
	{args: []string{"member", "list"}, sort: true},
	{do: (*session).sync, note: "wait until m1..m3 report the same revision"},
	{args: []string{"endpoint", "status", "-w", "json"}, json: &jsonNorm{volatile: raftVolatile, agree: []string{"leader"}}},
	{args: []string{"endpoint", "health", "-w", "json"}, json: &jsonNorm{volatile: []string{"took"}, lines: true}, sort: true},
	{args: []string{"endpoint", "hashkv", "-w", "json"}, json: &jsonNorm{volatile: []string{"raft_term"}, agree: []string{"hash"}}},
	{args: []string{"snapshot", "save", "{dir}/snap.db", "--endpoints={m1-client}"}},
	{tool: "etcdutl", args: []string{"snapshot", "status", "{dir}/snap.db", "-w", "json"}, json: &jsonNorm{volatile: []string{"hash", "totalSize"}}},
	{args: []string{"compaction", "5"}},
	{args: []string{"get", "foo", "--rev=2"}, stderr: true},
	{args: []string{"get", "foo", "--rev=5", "-w", "json"}, json: kvJSON},
	{args: []string{"watch", "foo", "--rev=2"}, stderr: true},
	{do: (*session).sync, note: "wait until m1..m3 report the same revision"},
	{args: []string{"endpoint", "hashkv", "-w", "json"}, json: &jsonNorm{volatile: []string{"raft_term"}, agree: []string{"hash"}}},
	{args: []string{"defrag"}, norm: []rewrite{took}},
	{args: []string{"endpoint", "status", "-w", "json"}, json: &jsonNorm{volatile: raftVolatile, agree: []string{"leader"}}},
	{args: []string{"alarm", "list"}},
	{args: []string{"alarm", "disarm"}},
	{args: []string{"get", "", "--from-key", "--keys-only"}},
}

// session runs theSession against one cluster and writes a transcript.
type session struct {
	t       *testing.T
	bin     string
	cluster *interoptest.EtcdCluster
	ctl     string
	utl     string
	dir     string
	tls     []string          // etcdctl's --cacert, --cert and --key, if the cluster serves TLS
	curl    []string          // curl and its TLS flags, for tool "curl"
	vars    map[string]string // {name} in args -> value
	names   [][2]string       // value in output -> <name>
	out     bytes.Buffer      // the transcript
}

func TestEtcdctlSession(t *testing.T) {
	runSession(t, "session", theSession, interoptest.Options{})
}

// bigValue fills most of noSpaceQuota: the first put of it fits, the second
// cannot, whatever the exact size of each server's empty db.
var bigValue = strings.Repeat("x", 600_000)

const noSpaceQuota = "1000000"

// noSpaceSession is the operator's runbook for a full database: the NOSPACE
// alarm is raised on the member that took the write (m1), blocks puts but
// not reads and deletes, and is cleared by compaction, defrag and disarm.
var noSpaceSession = []step{
	{args: []string{"--endpoints={m1-client}", "put", "big1"}, stdin: bigValue},
	{do: (*session).waitBigDB, note: "wait until every member's db holds big1 (backends commit in batches)"},
	{args: []string{"--endpoints={m1-client}", "put", "big2"}, stdin: bigValue, stderr: true},
	{args: []string{"alarm", "list"}},
	// etcd writes storageVersion 3.6.0 only once the cluster version is
	// settled, seconds after the start: not yet stable here.
	{args: []string{"--endpoints={m1-client}", "endpoint", "status", "-w", "json"}, json: &jsonNorm{volatile: append(raftVolatile[:len(raftVolatile):len(raftVolatile)], "storageVersion"), agree: []string{"leader"}}},
	{args: []string{"put", "small", "v"}, stderr: true},
	{args: []string{"get", "big1", "--keys-only"}},
	{args: []string{"del", "big1"}}, // rev 3
	{args: []string{"compaction", "3"}},
	{args: []string{"defrag"}, norm: []rewrite{took}},
	{args: []string{"alarm", "disarm"}},
	{args: []string{"alarm", "list"}},
	{args: []string{"put", "small", "v"}},
	{args: []string{"get", "", "--from-key", "--keys-only"}},
}

func TestEtcdctlNoSpaceSession(t *testing.T) {
	runSession(t, "nospace", noSpaceSession, interoptest.Options{Args: []string{"--quota-backend-bytes", noSpaceQuota}})
}

// runSession runs steps against a fresh 3-member cluster of each system and
// compares the transcript with testdata/<name>.golden, which -update writes
// from the real etcd run.
func runSession(t *testing.T, name string, steps []step, opts interoptest.Options) {
	golden := filepath.Join("testdata", name+".golden")
	forEachSystem(t, func(t *testing.T, bin string) {
		s := newSession(t, bin, opts)
		for i, st := range steps {
			s.step(i, st)
		}
		got := s.out.String()
		sys := filepath.Base(t.Name())
		if *transcripts != "" {
			path := filepath.Join(*transcripts, name+"."+sys+".txt")
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Error(err)
			}
		}
		if *update && sys == systems[0].name {
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update against real etcd to create it)", err)
		}
		compareTranscripts(t, golden, string(want), got)
	})
}

func newSession(t *testing.T, bin string, opts interoptest.Options) *session {
	c := startCluster(t, bin, opts)
	s := &session{
		t: t, bin: bin, cluster: c,
		ctl:  interoptest.Binary(t, "etcdctl"),
		utl:  interoptest.Binary(t, "etcdutl"),
		dir:  t.TempDir(),
		vars: map[string]string{},
	}
	s.name("dir", s.dir, s.dir)
	for i, m := range c.Members {
		s.name(m.Name+"-client", c.Endpoints()[i])
		s.name(m.Name+"-peer", strings.TrimPrefix(m.PeerURL, "http://"))
	}
	s.name("m4-peer", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	s.name("m4-client", "127.0.0.1:"+strconv.Itoa(freePort(t)))
	cfg := clientv3.Config{Endpoints: c.Endpoints()}
	if o := opts.TLS; o != nil {
		s.tls = []string{"--cacert=" + o.CAFile, "--cert=" + o.ClientCertFile, "--key=" + o.ClientKeyFile}
		s.curl = []string{curlBinary(t), "-sS", "--cacert", o.CAFile, "--cert", o.ClientCertFile, "--key", o.ClientKeyFile,
			"-w", "%{stderr}HTTP %{http_code}\n"}
		cert, key := interoptest.AnonymousClientCert(o)
		s.name("anon-cert", cert)
		s.name("anon-key", key)
		var err error
		if cfg.TLS, err = o.ClientConfig(); err != nil {
			t.Fatal(err)
		}
	}
	cli := dial(t, cfg)
	ml, err := cli.MemberList(timeout(t, 10*time.Second))
	if err != nil {
		t.Fatalf("member list: %v", err)
	}
	s.id("cluster-id", ml.Header.ClusterId)
	for _, m := range ml.Members {
		s.id(m.Name+"-id", m.ID)
	}
	return s
}

// name makes {n} in args stand for arg, and value in output read <n>.
func (s *session) name(n, arg string, values ...string) {
	s.vars[n] = arg
	if len(values) == 0 {
		values = []string{arg}
	}
	for _, v := range values {
		s.names = append(s.names, [2]string{v, "<" + n + ">"})
	}
	// Longest first, so that no value is replaced inside a longer one.
	slices.SortStableFunc(s.names, func(a, b [2]string) int { return len(b[0]) - len(a[0]) })
}

// id names an etcd ID in its hex (args, etcdctl's text: leases as %016x,
// "member add" as %16x) and decimal (JSON) forms.
func (s *session) id(n string, id uint64) {
	hex := strconv.FormatUint(id, 16)
	s.name(n, hex, fmt.Sprintf("%016x", id), fmt.Sprintf("%16x", id), hex, strconv.FormatUint(id, 10))
}

func (s *session) expand(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for k, v := range s.vars {
			a = strings.ReplaceAll(a, "{"+k+"}", v)
		}
		out[i] = a
	}
	return out
}

func (s *session) step(i int, st step) {
	t := s.t
	if st.do != nil {
		fmt.Fprintf(&s.out, "## %d: %s\n", i, st.note)
		st.do(s)
		return
	}
	tool, bin := "etcdctl", s.ctl
	args := s.expand(st.args)
	switch {
	case st.tool == "etcdutl":
		tool, bin = st.tool, s.utl
	case st.tool == "curl":
		tool, bin = st.tool, s.curl[0]
		args = append(slices.Clip(s.curl[1:]), args...)
	default:
		args = append(slices.Clip(s.tls), args...)
		if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--endpoints") }) {
			args = append([]string{"--endpoints=" + strings.Join(s.cluster.Endpoints(), ",")}, args...)
		}
	}
	fmt.Fprintf(&s.out, "## %d: %s %s\n", i, tool, strings.Join(st.args, " "))
	var r result
	switch {
	case st.watchLines > 0:
		r = s.watch(bin, args, st.watchLines)
	case st.retry:
		deadline := time.Now().Add(60 * time.Second)
		for r = run(t, 30*time.Second, st.stdin, bin, args...); r.code != 0 && time.Now().Before(deadline); r = run(t, 30*time.Second, st.stdin, bin, args...) {
			time.Sleep(500 * time.Millisecond)
		}
	default:
		r = run(t, 30*time.Second, st.stdin, bin, args...)
	}
	if st.capture != nil {
		m := st.capture.re.FindStringSubmatch(r.stdout)
		if m == nil {
			t.Fatalf("step %d (%s %s): no %s in output %q (stderr %q)", i, tool, strings.Join(st.args, " "), st.capture.name, r.stdout, r.stderr)
		}
		if st.capture.text {
			s.name(st.capture.name, m[1])
		} else {
			id, err := strconv.ParseUint(m[1], 16, 64)
			if err != nil {
				t.Fatalf("step %d: %s %q: %v", i, st.capture.name, m[1], err)
			}
			s.id(st.capture.name, id)
		}
	}
	out := r.stdout
	// A gateway's refusal may be plain text (http.Error).
	if st.json != nil && r.code == 0 && (st.tool != "curl" || json.Valid([]byte(out))) {
		var err error
		if out, err = st.json.apply(out); err != nil {
			t.Errorf("step %d (%s %s): %v", i, tool, strings.Join(st.args, " "), err)
		}
	}
	if st.stderr || st.tool == "curl" || r.code != 0 { // an unexpected failure shows why, too; curl's status is on stderr
		out += clientErrors(r.stderr)
	}
	out = s.replaceNames(out)
	for _, n := range st.norm {
		out = n(out)
	}
	if st.sort {
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		sort.Strings(lines)
		out = strings.Join(lines, "\n") + "\n"
	}
	s.out.WriteString(out)
	if out != "" && !strings.HasSuffix(out, "\n") {
		s.out.WriteString("\n")
	}
	if r.code != 0 {
		fmt.Fprintf(&s.out, "[exit %d]\n", r.code)
	}
}

func (s *session) replaceNames(out string) string {
	for _, n := range s.names {
		out = strings.ReplaceAll(out, n[0], n[1])
	}
	return out
}

// clientErrors keeps the lines a person reads from etcdctl's stderr, not its
// JSON client log (timestamps, pointers).
func clientErrors(stderr string) string {
	var b strings.Builder
	for _, l := range strings.Split(stderr, "\n") {
		if l != "" && !strings.HasPrefix(l, "{") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

var initialCluster = regexp.MustCompile(`ETCD_INITIAL_CLUSTER="([^"]*)"`)

// sortInitialCluster sorts the members of ETCD_INITIAL_CLUSTER, which etcd
// lists in member-ID order and IDs derive from the ports of the run.
func sortInitialCluster(out string) string {
	return initialCluster.ReplaceAllStringFunc(out, func(m string) string {
		list := strings.Split(initialCluster.FindStringSubmatch(m)[1], ",")
		sort.Strings(list)
		return `ETCD_INITIAL_CLUSTER="` + strings.Join(list, ",") + `"`
	})
}

// watch runs a watch until it printed n lines, then stops it; a watch that
// prints fewer within 10s fails the step.
func (s *session) watch(bin string, args []string, n int) result {
	t := s.t
	ctx := timeout(t, 10*time.Second)
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("e2e: starting %s %s: %v", bin, strings.Join(args, " "), err)
	}
	var lines []string
	sc := bufio.NewScanner(pipe)
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(lines) < n {
		t.Errorf("e2e: watch %s printed %d lines, want %d:\n%s\nstderr:\n%s", strings.Join(args, " "), len(lines), n, strings.Join(lines, "\n"), clientErrors(stderr.String()))
	}
	return result{stdout: strings.Join(lines, "\n") + "\n"}
}

// startM4 starts the member added as a learner, with the server under test.
func (s *session) startM4() {
	t := s.t
	var initial []string
	for _, m := range s.cluster.Members {
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	initial = append(initial, "m4=http://"+s.vars["m4-peer"])
	startMember(t, s.bin, "m4", filepath.Join(t.TempDir(), "m4"), "http://"+s.vars["m4-client"], "http://"+s.vars["m4-peer"], strings.Join(initial, ","), "existing")
}

func (s *session) sync() { waitSameRevision(s.t, s.cluster.Endpoints()) }

// waitBigDB waits until every member reports a db of at least bigValue's
// size, so that the next big put is refused by m1's quota check before it is
// proposed, and no member raises NOSPACE while applying it.
func (s *session) waitBigDB() {
	cli := newClient(s.t, s.cluster.Endpoints()...)
	ctx := timeout(s.t, 30*time.Second)
	for _, ep := range s.cluster.Endpoints() {
		var size int64
		for ctx.Err() == nil {
			st, err := cli.Status(ctx, ep)
			if err == nil {
				if size = st.DbSize; size >= int64(len(bigValue)) {
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		if ctx.Err() != nil {
			s.t.Errorf("member %s: db size %d, never reached %d after a put of that size", ep, size, len(bigValue))
			return
		}
	}
}

// apply normalizes a JSON document; see jsonNorm.
func (n *jsonNorm) apply(out string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return out, fmt.Errorf("output is not JSON: %v\n%s", err, out)
	}
	agreed := map[string][]string{}
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				switch {
				case slices.Contains(n.volatile, k):
					v[k] = "<" + k + ">"
				case slices.Contains(n.agree, k):
					agreed[k] = append(agreed[k], fmt.Sprint(x))
					v[k] = "<agree>"
				default:
					v[k] = walk(x)
				}
			}
		case []any:
			for i := range v {
				v[i] = walk(v[i])
			}
		}
		return v
	}
	v = walk(v)
	var err error
	for k, vals := range agreed {
		if !allEqual(vals) {
			err = fmt.Errorf("%s differs between members: %v", k, vals)
		}
	}
	if arr, ok := v.([]any); ok && n.lines {
		var b strings.Builder
		for _, x := range arr {
			b.WriteString(encode(x) + "\n")
		}
		return b.String(), err
	}
	return encode(v) + "\n", err
}

// encode writes v as compact JSON with sorted keys, < and > left as is.
func encode(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // v came from the decoder: it encodes
	return strings.TrimRight(b.String(), "\n")
}

// compareTranscripts reports every step whose output differs.
func compareTranscripts(t *testing.T, golden, want, got string) {
	t.Helper()
	ws, gs := splitSteps(want), splitSteps(got)
	for i := range max(len(ws), len(gs)) {
		var w, g string
		if i < len(ws) {
			w = ws[i]
		}
		if i < len(gs) {
			g = gs[i]
		}
		if w != g {
			t.Errorf("step differs from %s:\n--- want\n%s--- got\n%s", golden, w, g)
		}
	}
}

// splitSteps cuts a transcript at its "## " headers.
func splitSteps(s string) []string {
	parts := strings.Split("\n"+s, "\n## ")[1:]
	for i := range parts {
		parts[i] = "## " + parts[i] + "\n"
	}
	return parts
}
