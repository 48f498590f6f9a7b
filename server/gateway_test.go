package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/lifeboat-dev/lifeboat/internal/interoptest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// gatewayCall is one request to the HTTP/JSON gateway; body may name
// earlier results as {{name.field}}.
type gatewayCall struct {
	name, path, body string
	// shape: compare only which fields the answer has (values differ
	// between clusters: members, sizes, IDs).
	shape bool
}

// gatewaySession covers every service of etcd's gateway.
var gatewaySession = []gatewayCall{
	{name: "put", path: "/v3/kv/put", body: `{"key":"` + b64("foo") + `","value":"` + b64("bar") + `"}`},
	{name: "put2", path: "/v3/kv/put", body: `{"key":"` + b64("foo2") + `","value":"` + b64("baz") + `","prev_kv":true}`},
	{name: "range", path: "/v3/kv/range", body: `{"key":"` + b64("foo") + `","range_end":"` + b64("fop") + `"}`},
	{name: "range-count", path: "/v3/kv/range", body: `{"key":"` + b64("foo") + `","range_end":"` + b64("fop") + `","count_only":true}`},
	{name: "txn", path: "/v3/kv/txn", body: `{"compare":[{"target":"VALUE","key":"` + b64("foo") + `","value":"` + b64("bar") + `"}],` +
		`"success":[{"request_put":{"key":"` + b64("t") + `","value":"` + b64("1") + `"}}],"failure":[{"request_range":{"key":"` + b64("t") + `"}}]}`},
	{name: "txn-fail", path: "/v3/kv/txn", body: `{"compare":[{"target":"VERSION","key":"` + b64("foo") + `","version":"9"}],` +
		`"failure":[{"request_range":{"key":"` + b64("t") + `"}}]}`},
	{name: "delete", path: "/v3/kv/deleterange", body: `{"key":"` + b64("foo2") + `","prev_kv":true}`},
	{name: "compact", path: "/v3/kv/compaction", body: `{"revision":"2"}`},
	{name: "range-compacted", path: "/v3/kv/range", body: `{"key":"` + b64("foo") + `","revision":"1"}`},
	{name: "empty-key", path: "/v3/kv/put", body: `{"value":"` + b64("x") + `"}`},
	{name: "grant", path: "/v3/lease/grant", body: `{"TTL":"60"}`, shape: true},
	{name: "ttl", path: "/v3/lease/timetolive", body: `{"ID":"{{grant.ID}}","keys":true}`, shape: true},
	{name: "leases", path: "/v3/lease/leases", body: `{}`, shape: true},
	{name: "keepalive", path: "/v3/lease/keepalive", body: `{"ID":"{{grant.ID}}"}`, shape: true},
	{name: "revoke", path: "/v3/lease/revoke", body: `{"ID":"{{grant.ID}}"}`},
	{name: "revoke-again", path: "/v3/lease/revoke", body: `{"ID":"{{grant.ID}}"}`},
	{name: "members", path: "/v3/cluster/member/list", body: `{}`, shape: true},
	{name: "status", path: "/v3/maintenance/status", body: `{}`, shape: true},
	{name: "alarms", path: "/v3/maintenance/alarm", body: `{"action":"GET"}`},
	{name: "hashkv", path: "/v3/maintenance/hashkv", body: `{}`, shape: true},
	{name: "auth-status", path: "/v3/auth/status", body: `{}`},
	{name: "lock", path: "/v3/lock/lock", body: `{"name":"` + b64("mylock") + `"}`, shape: true},
	{name: "unlock", path: "/v3/lock/unlock", body: `{"key":"{{lock.key}}"}`},
	{name: "lease2", path: "/v3/lease/grant", body: `{"TTL":"60"}`, shape: true},
	{name: "campaign", path: "/v3/election/campaign", body: `{"name":"` + b64("el") + `","lease":"{{lease2.ID}}","value":"` + b64("v1") + `"}`, shape: true},
	{name: "leader", path: "/v3/election/leader", body: `{"name":"` + b64("el") + `"}`, shape: true},
	{name: "proclaim", path: "/v3/election/proclaim", body: `{"leader":{{campaign.leader}},"value":"` + b64("v2") + `"}`},
	{name: "resign", path: "/v3/election/resign", body: `{"leader":{{campaign.leader}}}`},
	{name: "no-leader", path: "/v3/election/leader", body: `{"name":"` + b64("el") + `"}`},
	{name: "watch-bad", path: "/v3/kv/range", body: `{"key":`},
}

// normalizeHeader drops what differs between any two clusters.
var headerIDs = regexp.MustCompile(`"(cluster_id|member_id|raft_term)":"\d+"`)

// shapeOf lists the field paths of a JSON value.
func shapeOf(v any, prefix string, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			*out = append(*out, prefix+"."+k)
			shapeOf(e, prefix+"."+k, out)
		}
	case []any:
		for _, e := range x {
			shapeOf(e, prefix+"[]", out)
		}
	}
}

// runGatewaySession posts the session to endpoint and returns each answer
// normalized for comparison.
func runGatewaySession(t *testing.T, endpoint string) []string {
	t.Helper()
	results := map[string]map[string]json.RawMessage{}
	ref := regexp.MustCompile(`\{\{(\w[\w-]*)\.(\w+)\}\}`)
	var out []string
	for _, c := range gatewaySession {
		body := ref.ReplaceAllStringFunc(c.body, func(m string) string {
			p := ref.FindStringSubmatch(m)
			v := results[p[1]][p[2]]
			if v == nil {
				t.Fatalf("%s: no %s.%s in %v", c.name, p[1], p[2], results[p[1]])
			}
			return strings.Trim(string(v), `"`)
		})
		if strings.Contains(c.body, "{{campaign.leader}}") {
			body = strings.ReplaceAll(c.body, "{{campaign.leader}}", string(results["campaign"]["leader"]))
		}
		resp, err := http.Post(endpoint+c.path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		_ = json.Unmarshal(b, &m)
		results[c.name] = m
		// protojson varies its whitespace from build to build.
		var compact bytes.Buffer
		if json.Compact(&compact, b) == nil {
			b = compact.Bytes()
		}
		norm := headerIDs.ReplaceAllString(string(b), `"$1":"x"`)
		if c.shape {
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s: %v: %s", c.name, err, b)
			}
			var paths []string
			shapeOf(v, "", &paths)
			sort.Strings(paths)
			paths = slicesCompact(paths)
			norm = strings.Join(paths, " ")
		}
		out = append(out, fmt.Sprintf("%s %s: %d %s", c.name, c.path, resp.StatusCode, strings.TrimSpace(norm)))
	}
	return out
}

func slicesCompact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// TestGatewayMatchesEtcd runs the same HTTP/JSON session against real etcd
// and lifeboat: the same status codes and JSON (fields that differ between
// clusters compared by shape).
func TestGatewayMatchesEtcd(t *testing.T) {
	etcd := interoptest.StartEtcd(t, interoptest.Options{Members: 1})
	want := runGatewaySession(t, etcd.ClientURLs[0])
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	got := runGatewaySession(t, c.endpoint(0))
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("gateway answer differs:\netcd:     %s\nlifeboat: %s", want[i], got[i])
		}
	}
}

// TestGatewayWatchStreams watches over the gateway: the created response,
// then the events of later puts, one JSON object per line as etcd's.
func TestGatewayWatchStreams(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, c.endpoint(0)+"/v3/watch",
		strings.NewReader(`{"create_request":{"key":"`+b64("w")+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() map[string]any {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("watch stream ended: %v", lines.Err())
		}
		var m struct{ Result map[string]any }
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			t.Fatalf("%v: %s", err, lines.Bytes())
		}
		return m.Result
	}
	if created := next(); created["created"] != true {
		t.Fatalf("first message %v", created)
	}
	for i := range 3 {
		// The events wait in the stream while the put is answered on
		// another connection.
		pr, err := http.Post(c.endpoint(0)+"/v3/kv/put", "application/json",
			bytes.NewReader([]byte(`{"key":"`+b64("w")+`","value":"`+b64(fmt.Sprint(i))+`"}`)))
		if err != nil {
			t.Fatal(err)
		}
		pr.Body.Close()
		ev := next()
		evs, _ := ev["events"].([]any)
		if len(evs) != 1 {
			t.Fatalf("event message %v", ev)
		}
		kv := evs[0].(map[string]any)["kv"].(map[string]any)
		if kv["value"] != b64(fmt.Sprint(i)) {
			t.Fatalf("event %d: %v", i, kv)
		}
	}
}

// TestHealthEndpoints checks /health, /livez and /readyz as etcd answers
// them, with ?serializable, ?exclude and ?verbose.
func TestHealthEndpoints(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(c.endpoint(0) + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		path string
		code int
		body string
	}{
		{"/health", 200, `{"health":"true","reason":""}`},
		{"/health?serializable=true", 200, `{"health":"true","reason":""}`},
		{"/livez", 200, "ok\n"},
		{"/livez?verbose", 200, "[+]serializable_read ok\nok\n"},
		{"/readyz", 200, "ok\n"},
		{"/readyz?verbose&exclude=non_learner", 200, "[+]data_corruption ok\n[+]linearizable_read ok\n[+]serializable_read ok\nok\n"},
		{"/readyz/linearizable_read", 200, "ok\n"},
	}
	for _, tc := range tests {
		if code, body := get(tc.path); code != tc.code || body != tc.body {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, code, body, tc.code, tc.body)
		}
	}
}

// TestReadyzWithoutQuorum: a member that lost its quorum fails /readyz's
// linearizable read with etcd's error text, not the gRPC status of the
// client API ("rpc error: code = ... desc = ...").
func TestReadyzWithoutQuorum(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	lead := c.waitLeader()
	for i := range 3 {
		if i != lead {
			c.stop(i)
		}
	}
	resp, err := http.Get(c.endpoint(lead) + "/readyz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	line := regexp.MustCompile(`(?m)^\[-\]linearizable_read failed: (.*)$`).FindStringSubmatch(string(b))
	if resp.StatusCode != http.StatusServiceUnavailable || line == nil || !strings.HasPrefix(line[1], "etcdserver: ") {
		t.Fatalf("GET /readyz?verbose without quorum: %s\n%s", resp.Status, b)
	}
}

// TestGatewayTxnWithAnEmptyOp: an op with no request (here a misspelt one)
// is refused with etcd's "key not found".
func TestGatewayTxnWithAnEmptyOp(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	c.waitLeader()
	resp, err := http.Post(c.endpoint(0)+"/v3/kv/txn", "application/json", strings.NewReader(
		`{"compare":[{"result":0,"target":1,"key":"Zm9v"}],"success":[{"Request":{"RequestPut":{"key":"Zm9v","value":"YmFy"}}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "etcdserver: key not found") {
		t.Fatalf("txn with an empty op: %s %s", resp.Status, b)
	}
}
