// Package netproxy forwards TCP connections to named nodes and injects
// network faults per directed link between nodes: added latency, a
// blackhole that delivers nothing while it lasts, and refusal, which cuts
// the link's connections and closes new ones at once.
//
// A Network holds the links; a Proxy listens in front of one node's
// listener (its target) and forwards every connection it accepts. The node
// that dialed a connection is named by the Network's Identifier (for
// processes on this machine, ProcIdentifier finds the process that owns
// the dialing socket); a dialer it cannot name is the node "" (Anyone).
// Bytes from the dialer to the listener's node follow the link
// dialer->node, bytes back follow node->dialer, so one-way faults act on
// one direction of every connection between the two.
//
// A blackhole holds bytes rather than discarding them: the proxy stops
// reading, the sender's socket buffers fill, and what was sent is delivered
// when the blackhole ends, as TCP would after a partition heals (a sender
// that gives up closes the connection itself). Nothing is ever dropped from
// the middle of a stream.
package netproxy

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Anyone names a dialer the Identifier could not name.
const Anyone = ""

// Fault is the state of one direction of a link.
type Fault struct {
	// Delay is added to every byte sent over the link.
	Delay time.Duration
	// Blackhole delivers nothing while set; what was sent is held.
	Blackhole bool
	// Refuse cuts every connection carrying the link and closes new ones.
	Refuse bool
}

func (f Fault) String() string {
	switch {
	case f.Refuse:
		return "refuse"
	case f.Blackhole:
		return "blackhole"
	case f.Delay > 0:
		return "delay " + f.Delay.String()
	}
	return "ok"
}

// Identifier names the node that dialed a connection, given its remote
// and local addresses as the proxy sees them; Anyone if unknown.
type Identifier func(remote, local net.Addr) string

type link struct{ from, to string }

// Network is a set of proxies and the faults of the links between nodes.
type Network struct {
	identify Identifier

	mu      sync.Mutex
	faults  map[link]Fault
	changed chan struct{} // closed and replaced at every fault change
	proxies []*Proxy
	closed  bool
}

// New returns a Network with every link healthy. identify may be nil, in
// which case every dialer is Anyone.
func New(identify Identifier) *Network {
	if identify == nil {
		identify = func(net.Addr, net.Addr) string { return Anyone }
	}
	return &Network{identify: identify, faults: make(map[link]Fault), changed: make(chan struct{})}
}

// Set sets the fault of the link from -> to (Fault{} heals it). It applies
// to open connections at once.
func (n *Network) Set(from, to string, f Fault) {
	n.mu.Lock()
	if f == (Fault{}) {
		delete(n.faults, link{from, to})
	} else {
		n.faults[link{from, to}] = f
	}
	n.broadcastLocked()
	proxies := append([]*Proxy(nil), n.proxies...)
	n.mu.Unlock()
	if f.Refuse {
		for _, p := range proxies {
			p.cutRefused()
		}
	}
}

// Heal sets every link back to healthy.
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.faults)
	n.broadcastLocked()
	n.mu.Unlock()
}

// Faults returns the links that are not healthy, as "from->to: fault".
func (n *Network) Faults() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var s []string
	for l, f := range n.faults {
		s = append(s, fmt.Sprintf("%s->%s: %v", l.from, l.to, f))
	}
	return s
}

func (n *Network) broadcastLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// fault returns the fault of from -> to and a channel closed at the next
// change.
func (n *Network) fault(from, to string) (Fault, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.faults[link{from, to}], n.changed
}

// Proxy listens on listen ("127.0.0.1:0" picks a port) in front of node,
// whose listener is at target, and forwards every connection to it.
func (n *Network) Proxy(node, listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("netproxy: proxy for %s on %s: %w", node, listen, err)
	}
	p := &Proxy{net: n, node: node, target: target, ln: ln, conns: make(map[*conn]struct{}), done: make(chan struct{})}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		ln.Close()
		return nil, fmt.Errorf("netproxy: proxy for %s: network closed", node)
	}
	n.proxies = append(n.proxies, p)
	n.mu.Unlock()
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Close closes every proxy and its connections.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	proxies := n.proxies
	n.proxies = nil
	n.mu.Unlock()
	for _, p := range proxies {
		p.Close()
	}
}

// Proxy forwards the connections to one node.
type Proxy struct {
	net    *Network
	node   string
	target string
	ln     net.Listener

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	done   chan struct{} // closed by Close: wakes the pipes a fault holds
	wg     sync.WaitGroup
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops listening and cuts every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		close(p.done)
	}
	p.closed = true
	for c := range p.conns {
		c.close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// conn is one forwarded connection.
type conn struct {
	dialer    string
	down, up  net.Conn // the dialer's side and the target's side
	closeOnce sync.Once
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.down.Close()
		if c.up != nil {
			c.up.Close()
		}
	})
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		d, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.forward(d)
	}
}

func (p *Proxy) forward(down net.Conn) {
	defer p.wg.Done()
	c := &conn{dialer: p.net.identify(down.RemoteAddr(), down.LocalAddr()), down: down}
	defer c.close()
	if p.refused(c) {
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	c.up = up
	if !p.track(c) {
		return
	}
	defer p.untrack(c)
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, down, c.dialer, p.node); done <- struct{}{} }()
	go func() { p.pipe(down, up, p.node, c.dialer); done <- struct{}{} }()
	<-done // one direction ended: end both
	c.close()
	<-done
}

func (p *Proxy) refused(c *conn) bool {
	up, _ := p.net.fault(c.dialer, p.node)
	back, _ := p.net.fault(p.node, c.dialer)
	return up.Refuse || back.Refuse
}

func (p *Proxy) track(c *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c *conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cutRefused closes the connections that carry a refused link.
func (p *Proxy) cutRefused() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if p.refused(c) {
			c.close()
		}
	}
}

// chunk is bytes read from one side, with the time they were read.
type chunk struct {
	b  []byte
	at time.Time
}

// chunkSize and queued bound what one direction holds in memory.
const (
	chunkSize = 32 << 10
	queued    = 16
)

// pipe copies src to dst under the faults of from -> to.
func (p *Proxy) pipe(dst, src net.Conn, from, to string) {
	q := make(chan chunk, queued)
	stop := make(chan struct{})
	go func() {
		defer close(q)
		for {
			if !p.await(from, to, time.Time{}, stop) {
				return
			}
			b := make([]byte, chunkSize)
			n, err := src.Read(b)
			if n > 0 {
				select {
				case q <- chunk{b[:n], time.Now()}:
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer close(stop)
	for c := range q {
		if !p.await(from, to, c.at, stop) {
			return
		}
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}

// await waits until bytes read at `at` may be delivered over from -> to
// (zero at: until reading may go on). It returns false if the link is
// refused, stop is closed or the proxy closes.
func (p *Proxy) await(from, to string, at time.Time, stop <-chan struct{}) bool {
	for {
		f, changed := p.net.fault(from, to)
		if f.Refuse {
			return false
		}
		var timer *time.Timer
		var wait <-chan time.Time
		if !f.Blackhole {
			if at.IsZero() {
				return true
			}
			d := time.Until(at.Add(f.Delay))
			if d <= 0 {
				return true
			}
			timer = time.NewTimer(d)
			wait = timer.C
		}
		select {
		case <-wait:
			return true
		case <-changed:
		case <-stop:
			return false
		case <-p.done:
			return false
		}
		if timer != nil {
			timer.Stop()
		}
	}
}
