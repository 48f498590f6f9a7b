package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-dev/lifeboat/server"
)

type demoOptions struct {
	dataDir     string
	host        string
	clientPorts []int
	peerPorts   []int
	logLevel    string
}

func newDemoCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:     "demo",
		Aliases: []string{"cluster"},
		Short:   "Run a local 3-member cluster in this process until Ctrl-C",
		Long: `demo starts three members on 127.0.0.1, with their data under --data-dir
(one sub-directory per member, kept between runs) and their JSON logs in
<data-dir>/demo.log. It prints the endpoints and an etcdctl command line,
then runs until SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.clientPorts) != 3 || len(o.peerPorts) != 3 {
				return usageError{errors.New("demo: --client-ports and --peer-ports need three ports each")}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return o.run(ctx, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", "lifeboat-demo", "directory for the members' data and the log")
	f.StringVar(&o.host, "host", "127.0.0.1", "address the members listen on")
	f.IntSliceVar(&o.clientPorts, "client-ports", []int{2379, 22379, 32379}, "client ports of the three members")
	f.IntSliceVar(&o.peerPorts, "peer-ports", []int{2380, 22380, 32380}, "peer ports of the three members")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	return cmd
}

func (o *demoOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	for _, p := range append(append([]int(nil), o.clientPorts...), o.peerPorts...) {
		if err := portFree(o.host, p); err != nil {
			return fmt.Errorf("demo: %w (choose others with --client-ports and --peer-ports)", err)
		}
	}
	logPath := filepath.Join(o.dataDir, "demo.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("demo: open log: %w", err)
	}
	defer logFile.Close()
	lg, _, err := newLogger(logFile, logFile, &memberOptions{logger: "zap", logLevel: o.logLevel, logOutputs: []string{"default"}, logFormat: "json"})
	if err != nil {
		return usageError{err}
	}
	cfgs := o.configs(lg)
	// Start the members together: each waits for a quorum of peers.
	type started struct {
		s   *server.Server
		err error
	}
	results := make(chan started, len(cfgs))
	for _, c := range cfgs {
		go func() {
			s, err := server.New(c)
			results <- started{s, err}
		}()
	}
	var members []*server.Server
	var errs []error
	for range cfgs {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		members = append(members, r.s)
	}
	stopAll := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, s := range members {
			if err := s.Stop(sctx); err != nil {
				fmt.Fprintf(stderr, "lifeboat demo: %v\n", err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		stopAll()
		return fmt.Errorf("demo: %w (log: %s)", err, logPath)
	}
	var endpoints []string
	for _, c := range cfgs {
		endpoints = append(endpoints, c.AdvertiseClientURLs...)
	}
	fmt.Fprintf(stdout, "lifeboat demo: 3 members running, data in %s, log in %s\n", o.dataDir, logPath)
	for i, c := range cfgs {
		fmt.Fprintf(stdout, "  %s  client %s  peer %s\n", c.Name, cfgs[i].AdvertiseClientURLs[0], c.AdvertisePeerURLs[0])
	}
	fmt.Fprintf(stdout, "\ntry:\n  etcdctl --endpoints %s put hello world\n  etcdctl --endpoints %s endpoint status -w table\n\nCtrl-C stops the cluster.\n",
		strings.Join(endpoints, ","), strings.Join(endpoints, ","))
	<-ctx.Done()
	fmt.Fprintln(stdout, "lifeboat demo: stopping")
	stopAll()
	return nil
}

// configs builds the three members' configurations.
func (o *demoOptions) configs(lg *slog.Logger) []*server.Config {
	ic := make(map[string][]string)
	for i, p := range o.peerPorts {
		ic[fmt.Sprintf("m%d", i+1)] = []string{"http://" + net.JoinHostPort(o.host, strconv.Itoa(p))}
	}
	var out []*server.Config
	for i := range 3 {
		name := fmt.Sprintf("m%d", i+1)
		c := server.NewConfig()
		c.Name = name
		c.DataDir = filepath.Join(o.dataDir, name+".etcd")
		client := "http://" + net.JoinHostPort(o.host, strconv.Itoa(o.clientPorts[i]))
		c.ListenClientURLs = []string{client}
		c.AdvertiseClientURLs = []string{client}
		c.ListenPeerURLs = ic[name]
		c.AdvertisePeerURLs = ic[name]
		c.InitialCluster = ic
		c.InitialClusterToken = "lifeboat-demo"
		c.Logger = lg.With("member", name)
		out = append(out, c)
	}
	return out
}

func portFree(host string, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d is not free: %w", port, err)
	}
	return ln.Close()
}
