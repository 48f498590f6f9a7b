package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// newGatewayCommand is etcd's "gateway start": a TCP proxy to the client
// URLs of a cluster, for clients that know one static address.
func newGatewayCommand(stderr io.Writer) *cobra.Command {
	gw := &cobra.Command{
		Use:   "gateway <subcommand>",
		Short: "gateway related command (etcd's L4 gateway)",
		Args:  cobra.NoArgs,
	}
	var (
		listen    string
		endpoints []string
		retry     time.Duration
	)
	start := &cobra.Command{
		Use:   "start",
		Short: "start the gateway",
		Long: `start proxies each TCP connection accepted on --listen-addr to one of
--endpoints, in turn; an endpoint that cannot be dialed is left out for
--retry-delay. As etcd's, it looks nothing up in DNS (no --discovery-srv).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := newTCPProxy(endpoints, retry)
			if err != nil {
				return usageError{err}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("gateway: %w", err)
			}
			p.lg = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{AddSource: true, ReplaceAttr: zapShape}))
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			p.lg.Info("ready to proxy client requests", "endpoints", p.endpoints)
			return p.serve(ctx, ln)
		},
	}
	f := start.Flags()
	f.StringVar(&listen, "listen-addr", "127.0.0.1:23790", "listen address")
	f.StringSliceVar(&endpoints, "endpoints", []string{"127.0.0.1:2379"}, "comma separated etcd cluster endpoints")
	f.DurationVar(&retry, "retry-delay", time.Minute, "duration of delay before retrying failed endpoints")
	gw.AddCommand(start)
	return gw
}

// tcpProxy hands each connection to the next endpoint that dials.
type tcpProxy struct {
	lg        *slog.Logger
	endpoints []string // host:port
	retry     time.Duration

	mu   sync.Mutex
	next int
	down map[string]time.Time // endpoint -> when to try it again
}

// newTCPProxy takes endpoints as URLs (their host:port is dialed) or as
// host:port.
func newTCPProxy(endpoints []string, retry time.Duration) (*tcpProxy, error) {
	p := &tcpProxy{retry: retry, down: map[string]time.Time{}, lg: slog.New(slog.DiscardHandler)}
	for _, ep := range endpoints {
		if strings.Contains(ep, "://") {
			u, err := url.Parse(ep)
			if err != nil {
				return nil, fmt.Errorf("gateway: --endpoints %q: %w", ep, err)
			}
			ep = u.Host
		}
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return nil, fmt.Errorf("gateway: --endpoints %q: %w", ep, err)
		}
		p.endpoints = append(p.endpoints, ep)
	}
	if len(p.endpoints) == 0 {
		return nil, errors.New("gateway: no --endpoints")
	}
	return p, nil
}

// serve accepts until ctx ends or ln fails, and waits for the connections.
func (p *tcpProxy) serve(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("gateway: accept: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.handle(ctx, c)
		}()
	}
}

// order is the endpoints from the next in turn, those marked down last.
func (p *tcpProxy) order() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var up, down []string
	for i := range p.endpoints {
		ep := p.endpoints[(p.next+i)%len(p.endpoints)]
		if t, ok := p.down[ep]; ok && now.Before(t) {
			down = append(down, ep)
		} else {
			up = append(up, ep)
		}
	}
	p.next = (p.next + 1) % len(p.endpoints)
	return append(up, down...)
}

func (p *tcpProxy) markDown(ep string) {
	p.mu.Lock()
	p.down[ep] = time.Now().Add(p.retry)
	p.mu.Unlock()
}

// handle copies between in and the first endpoint that dials, until either
// side closes or ctx ends.
func (p *tcpProxy) handle(ctx context.Context, in net.Conn) {
	defer in.Close()
	var out net.Conn
	for _, ep := range p.order() {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(ctx, "tcp", ep)
		if err != nil {
			p.lg.Warn("failed to connect to an endpoint; skipping it for the retry delay", "endpoint", ep, "retry-delay", p.retry, "error", err)
			p.markDown(ep)
			continue
		}
		out = c
		break
	}
	if out == nil {
		p.lg.Warn("no endpoint to proxy to", "remote", in.RemoteAddr().String())
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(out, in)
	go cp(in, out)
	waiting := 2
	select {
	case <-done:
		waiting--
	case <-ctx.Done():
	}
	// Closing both ends stops the other copy.
	in.Close()
	out.Close()
	for ; waiting > 0; waiting-- {
		<-done
	}
}
