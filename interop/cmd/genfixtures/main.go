package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

type config struct {
	bin      string // directory holding etcd, etcdctl and etcdutl
	out      string
	token    string
	portBase int
	seed     uint64
	keep     bool
}

func main() {
	lg := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(lg, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "genfixtures:", err)
		os.Exit(1)
	}
}

func run(lg *slog.Logger, args []string) error {
	var c config
	fl := flag.NewFlagSet("genfixtures", flag.ContinueOnError)
	fl.StringVar(&c.bin, "bin", "", "directory holding etcd, etcdctl and etcdutl of one version")
	fl.StringVar(&c.out, "out", "", "fixture set directory to write, e.g. ../fixtures/v3.6")
	fl.StringVar(&c.token, "token", "", "--initial-cluster-token; part of every member and cluster ID")
	fl.IntVar(&c.portBase, "port-base", 27380, "member i listens on base+i (peer) and base+10+i (client); solo is member 4")
	fl.Uint64Var(&c.seed, "seed", 13, "seed of the workload's values")
	fl.BoolVar(&c.keep, "keep", false, "keep the working directory")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if c.bin == "" || c.out == "" || c.token == "" || fl.NArg() != 0 {
		return errors.New("usage: genfixtures --bin <dir> --out <dir> --token <token> [--port-base N] [--seed N]")
	}
	for _, name := range []string{"etcd", "etcdctl", "etcdutl"} {
		if _, err := os.Stat(filepath.Join(c.bin, name)); err != nil {
			return fmt.Errorf("--bin %s: %w", c.bin, err)
		}
	}
	work, err := os.MkdirTemp("", "genfixtures-")
	if err != nil {
		return err
	}
	if c.keep {
		lg.Info("keeping the working directory", "dir", work)
	} else {
		defer os.RemoveAll(work)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stage := filepath.Join(work, "out")
	if err := os.Mkdir(stage, 0o755); err != nil {
		return err
	}
	g := &generator{lg: lg, cfg: c, work: work, stage: stage}
	if err := g.version(ctx); err != nil {
		return err
	}
	if err := g.cluster(ctx); err != nil {
		return fmt.Errorf("3-member cluster: %w", err)
	}
	if err := g.solo(ctx); err != nil {
		return fmt.Errorf("single member: %w", err)
	}
	return publish(stage, c.out)
}

// publish moves the staged files into out, replacing older ones.
func publish(stage, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(stage, e.Name()))
		if err != nil {
			return err
		}
		dst := filepath.Join(out, e.Name())
		if err := os.WriteFile(dst+".tmp", data, 0o644); err != nil {
			return err
		}
		if err := os.Rename(dst+".tmp", dst); err != nil {
			return err
		}
	}
	return nil
}
