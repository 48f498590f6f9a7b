package objstoretest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a store's server that can
// be told to cut every connection once a number of bytes has gone through
// it towards the server: a store that fails in the middle of an upload.
type Proxy struct {
	Addr   string
	target string
	l      net.Listener
	// budget is the bytes still allowed towards the server; < 0: unlimited.
	budget atomic.Int64
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target, closed when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: l.Addr().String(), target: target, l: l, conns: map[net.Conn]struct{}{}}
	p.budget.Store(-1)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// FailAfter lets n more bytes through towards the server, then cuts every
// connection and every new one at once.
func (p *Proxy) FailAfter(n int64) { p.budget.Store(n) }

// Heal lets everything through again.
func (p *Proxy) Heal() { p.budget.Store(-1) }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	if p.budget.Load() == 0 {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	p.track(c, true)
	p.track(up, true)
	defer p.track(c, false)
	defer p.track(up, false)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	go func() { p.toServer(up, c); done <- struct{}{} }()
	<-done
}

// toServer copies client bytes to the server within the budget.
func (p *Proxy) toServer(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			allowed := int64(n)
			for {
				b := p.budget.Load()
				if b < 0 {
					break
				}
				allowed = min(allowed, b)
				if p.budget.CompareAndSwap(b, b-allowed) {
					break
				}
			}
			if allowed > 0 {
				if _, werr := dst.Write(buf[:allowed]); werr != nil {
					return
				}
			}
			if allowed < int64(n) {
				p.cutAll()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *Proxy) close() {
	p.l.Close()
	p.cutAll()
	p.wg.Wait()
}
