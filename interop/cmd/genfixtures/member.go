package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// member is one etcd process on fixed ports (peer base+i, client base+10+i),
// so that its member ID, derived from its peer URL and the cluster token,
// is the same on every run.
type member struct {
	name      string // m1..m3, or solo
	dataDir   string
	logPath   string
	clientURL string
	peerURL   string
	etcd      string
	token     string
	cmd       *exec.Cmd
	done      chan struct{} // closed when the process has exited
}

func newMembers(c config, work string, ids ...int) []*member {
	var ms []*member
	for _, i := range ids {
		name := "m" + strconv.Itoa(i)
		if len(ids) == 1 {
			name = "solo"
		}
		ms = append(ms, &member{
			name:      name,
			dataDir:   filepath.Join(work, name),
			logPath:   filepath.Join(work, name+".log"),
			clientURL: "http://127.0.0.1:" + strconv.Itoa(c.portBase+10+i),
			peerURL:   "http://127.0.0.1:" + strconv.Itoa(c.portBase+i),
			etcd:      filepath.Join(c.bin, "etcd"),
			token:     c.token,
		})
	}
	return ms
}

func endpoints(ms []*member) []string {
	var eps []string
	for _, m := range ms {
		eps = append(eps, strings.TrimPrefix(m.clientURL, "http://"))
	}
	return eps
}

// startAll starts the members as one new cluster and waits for /health.
func startAll(ctx context.Context, lg *slog.Logger, ms []*member, snapshotCount int) error {
	var initial []string
	for _, m := range ms {
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for _, m := range ms {
		if err := m.start(strings.Join(initial, ","), snapshotCount); err != nil {
			return err
		}
		lg.Info("started etcd", "member", m.name, "client", m.clientURL, "peer", m.peerURL, "snapshot-count", snapshotCount)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, m := range ms {
		if err := m.waitHealthy(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (m *member) start(initialCluster string, snapshotCount int) error {
	logf, err := os.Create(m.logPath)
	if err != nil {
		return err
	}
	m.cmd = exec.Command(m.etcd,
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL,
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", initialCluster,
		"--initial-cluster-token", m.token,
		"--initial-cluster-state", "new",
		"--snapshot-count", strconv.Itoa(snapshotCount),
	)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", m.name, err)
	}
	m.done = make(chan struct{})
	go func() {
		_ = m.cmd.Wait() // stop reads the exit status from cmd.ProcessState
		logf.Close()
		close(m.done)
	}()
	return nil
}

func (m *member) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func (m *member) waitHealthy(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if m.exited() {
			return fmt.Errorf("etcd %s exited (%v); log %s:\n%s", m.name, m.cmd.ProcessState, m.logPath, logTail(m.logPath))
		}
		resp, err := client.Get(m.clientURL + "/health")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`) {
				return nil
			}
			err = fmt.Errorf("/health: %s %s", resp.Status, body)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd %s not healthy: %v (%w); log %s:\n%s", m.name, err, ctx.Err(), m.logPath, logTail(m.logPath))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopAll sends SIGTERM to every member, as an operator's shutdown does,
// and waits for each to exit.
func stopAll(lg *slog.Logger, ms []*member) error {
	var errs []error
	for _, m := range ms {
		if m.cmd == nil || m.exited() {
			continue
		}
		if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			errs = append(errs, fmt.Errorf("SIGTERM %s: %w", m.name, err))
		}
	}
	for _, m := range ms {
		if m.cmd == nil {
			continue
		}
		select {
		case <-m.done:
			lg.Info("stopped etcd", "member", m.name, "state", m.cmd.ProcessState.String())
		case <-time.After(20 * time.Second):
			m.cmd.Process.Kill()
			<-m.done
			errs = append(errs, fmt.Errorf("etcd %s ignored SIGTERM for 20s; killed, its data dir is not a clean fixture", m.name))
		}
	}
	return errors.Join(errs...)
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
