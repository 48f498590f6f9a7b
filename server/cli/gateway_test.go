package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/freeport"
)

func TestGatewayEndpoints(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    string
		wantErr bool
	}{
		{in: []string{"http://localhost:20000", "https://127.0.0.1:2379", "127.0.0.1:22379"}, want: "localhost:20000,127.0.0.1:2379,127.0.0.1:22379"},
		{in: []string{"localhost"}, wantErr: true},
		{in: []string{"http://%zz"}, wantErr: true},
		{in: nil, wantErr: true},
	} {
		p, err := newTCPProxy(tc.in, time.Minute)
		if tc.wantErr {
			if err == nil {
				t.Errorf("newTCPProxy(%q): %v, want an error", tc.in, p.endpoints)
			}
			continue
		}
		if err != nil || strings.Join(p.endpoints, ",") != tc.want {
			t.Errorf("newTCPProxy(%q): %v, %v; want %s", tc.in, p.endpoints, err, tc.want)
		}
	}
}

// echoServer answers each line with "<name>: <line>".
func echoServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s: %s\n", name, sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestGatewayStart runs "gateway --endpoints=... start" (etcd's e2e gives
// the flags before the subcommand): connections go to the endpoints in
// turn, and one that does not dial is skipped.
func TestGatewayStart(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	a, b := echoServer(t, "a"), echoServer(t, "b")
	listen := "127.0.0.1:" + strconv.Itoa(freeport.One(t))

	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		cmd := NewRootCommand(&bytes.Buffer{}, &stderr, Options{})
		cmd.SetArgs([]string{"gateway", "--endpoints=http://" + a + "," + deadAddr + ",http://" + b, "start", "--listen-addr", listen})
		done <- cmd.ExecuteContext(ctx)
	}()
	ask := func() string {
		t.Helper()
		var c net.Conn
		deadline := time.Now().Add(10 * time.Second)
		for {
			if c, err = net.Dial("tcp", listen); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("dial the gateway: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintln(c, "hello")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("through the gateway: %v", err)
		}
		return strings.TrimSpace(line)
	}
	var got []string
	for range 4 {
		got = append(got, ask())
	}
	// a; the dead one, skipped: b; b; a (the dead one is down for a minute).
	if want := "a: hello,b: hello,b: hello,a: hello"; strings.Join(got, ",") != want {
		t.Errorf("answers %v, want %s", got, want)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("gateway: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not stop with its context")
	}
	if !strings.Contains(stderr.String(), `"msg":"ready to proxy client requests"`) {
		t.Errorf("log has no ready line:\n%s", stderr.String())
	}
}
