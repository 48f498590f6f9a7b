package netproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pair is one connection through a proxy: the dialer's end and the
// target's end.
type pair struct{ dialer, target net.Conn }

// setup starts a target listener for node "b", a proxy in front of it and
// returns a function that opens a connection through the proxy.
func setup(t *testing.T, n *Network) func() pair {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p, err := n.Proxy("b", "127.0.0.1:0", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return func() pair {
		t.Helper()
		d, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return pair{d, c}
	}
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// recv reads exactly len(want) bytes within 10s.
func recv(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, len(want))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("reading %q: %v", want, err)
	}
	if string(b) != want {
		t.Fatalf("read %q, want %q", b, want)
	}
}

// silent checks that nothing arrives on c for a moment.
func silent(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	b := make([]byte, 1)
	n, err := c.Read(b)
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read %q, %v; want nothing", b[:n], err)
	}
}

// closed checks that c reads as closed.
func closed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := c.Read(b); err == nil {
		t.Fatal("connection still open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection not closed within 10s")
	}
}

func TestLinks(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, n *Network, open func() pair)
	}{
		{"healthy links forward both ways", func(t *testing.T, n *Network, open func() pair) {
			c := open()
			send(t, c.dialer, "ping")
			recv(t, c.target, "ping")
			send(t, c.target, "pong")
			recv(t, c.dialer, "pong")
		}},
		{"a delay holds bytes at least that long", func(t *testing.T, n *Network, open func() pair) {
			c := open()
			n.Set(Anyone, "b", Fault{Delay: 300 * time.Millisecond})
			start := time.Now()
			send(t, c.dialer, "slow")
			recv(t, c.target, "slow")
			if d := time.Since(start); d < 300*time.Millisecond {
				t.Fatalf("delivered after %v, before the delay", d)
			}
			send(t, c.target, "fast") // the other direction has no delay
			recv(t, c.dialer, "fast")
		}},
		{"a one-way blackhole holds one direction until it heals", func(t *testing.T, n *Network, open func() pair) {
			c := open()
			n.Set(Anyone, "b", Fault{Blackhole: true})
			send(t, c.dialer, "held")
			silent(t, c.target)
			send(t, c.target, "back")
			recv(t, c.dialer, "back")
			n.Heal()
			recv(t, c.target, "held")
		}},
		{"a blackhole lets new connections in but delivers nothing", func(t *testing.T, n *Network, open func() pair) {
			n.Set("b", Anyone, Fault{Blackhole: true})
			c := open()
			send(t, c.target, "held")
			silent(t, c.dialer)
			n.Set("b", Anyone, Fault{})
			recv(t, c.dialer, "held")
		}},
		{"refusal cuts open connections and closes new ones", func(t *testing.T, n *Network, open func() pair) {
			c := open()
			n.Set("b", Anyone, Fault{Refuse: true})
			closed(t, c.dialer)
			closed(t, c.target)
			p := n.proxies[0]
			d, err := net.Dial("tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			closed(t, d)
			n.Heal()
			c = open()
			send(t, c.dialer, "again")
			recv(t, c.target, "again")
		}},
		{"closing the network ends connections a blackhole holds", func(t *testing.T, n *Network, open func() pair) {
			c := open()
			n.Set(Anyone, "b", Fault{Blackhole: true})
			n.Set("b", Anyone, Fault{Blackhole: true})
			send(t, c.dialer, "held")
			send(t, c.target, "held too")
			closedNet := make(chan struct{})
			go func() { n.Close(); close(closedNet) }()
			select {
			case <-closedNet:
			case <-time.After(30 * time.Second):
				t.Fatal("Close still waits for the connections the blackhole holds")
			}
			closed(t, c.dialer)
		}},
		{"faults of other links do not apply", func(t *testing.T, n *Network, open func() pair) {
			n.Set("x", "b", Fault{Refuse: true})
			n.Set("b", "y", Fault{Blackhole: true})
			c := open()
			send(t, c.dialer, "ping")
			recv(t, c.target, "ping")
			send(t, c.target, "pong")
			recv(t, c.dialer, "pong")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := New(nil)
			tt.run(t, n, setup(t, n))
		})
	}
}

// TestProcIdentifier names this process as the dialer of a connection it
// opened, so the faults of its links apply.
func TestProcIdentifier(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	n := New(ProcIdentifier(func() map[string]int {
		return map[string]int{"other": os.Getppid(), "me": os.Getpid()}
	}))
	open := setup(t, n)
	n.Set("me", "b", Fault{Blackhole: true})
	c := open()
	send(t, c.dialer, "held")
	silent(t, c.target)
	n.Set("me", "b", Fault{})
	recv(t, c.target, "held")

	// A large write passes whole, in order, through the chunk queue.
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
	go c.dialer.Write(big)
	recv(t, c.target, string(big))
}
