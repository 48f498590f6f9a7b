package clikit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/spf13/cobra"
)

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		argv     []string
		wantCode int
		wantErr  string
	}{
		{"success", nil, nil, ExitOK, ""},
		{"finding", Finding(errors.New("crc mismatch")), nil, ExitFinding, "Error: crc mismatch\n"},
		{"usage", Usage(errors.New("no such dir")), nil, ExitUsage, "Error: no such dir\n"},
		{"wrapped finding", fmt.Errorf("verify: %w", Finding(errors.New("torn"))), nil, ExitFinding, "Error: verify: torn\n"},
		{"plain error is usage", errors.New("boom"), nil, ExitUsage, "Error: boom\n"},
		{"cobra's own error", nil, []string{"--no-such-flag"}, ExitUsage, "Error: unknown flag: --no-such-flag\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := &cobra.Command{
				Use: "x", SilenceErrors: true, SilenceUsage: true,
				RunE: func(*cobra.Command, []string) error { return tt.err },
			}
			var stderr bytes.Buffer
			code := Run(context.Background(), cmd, tt.argv, &stderr)
			if code != tt.wantCode || stderr.String() != tt.wantErr {
				t.Fatalf("exit %d, stderr %q; want %d, %q", code, stderr.String(), tt.wantCode, tt.wantErr)
			}
			// Only an error made by Usage says so; a plain one does not.
			if want := tt.name == "usage"; IsUsage(tt.err) != want {
				t.Fatalf("IsUsage(%v) = %v, want %v", tt.err, !want, want)
			}
		})
	}
}

// A root from NewRoot exits 2 on a bad flag or bad arguments, Args makes
// the latter usage errors, and AddVerbose gives the commands a logger that
// -v makes debug.
func TestNewRoot(t *testing.T) {
	if err := Args(cobra.NoArgs)(&cobra.Command{Use: "x"}, []string{"extra"}); !IsUsage(err) {
		t.Errorf("Args: %v is not usage", err)
	}
	tests := []struct {
		argv  []string
		code  int
		debug bool
	}{
		{[]string{"sub"}, ExitOK, false},
		{[]string{"sub", "-v"}, ExitOK, true},
		{[]string{"sub", "extra"}, ExitUsage, false},
		{[]string{"--no-such-flag"}, ExitUsage, false},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		root := NewRoot("tool", "short", "long", &stdout, &stderr)
		var lg *slog.Logger
		AddVerbose(root, &stderr, &lg)
		debug := false
		root.AddCommand(&cobra.Command{Use: "sub", Args: Args(cobra.NoArgs), RunE: func(cmd *cobra.Command, _ []string) error {
			debug = lg.Enabled(cmd.Context(), slog.LevelDebug)
			return nil
		}})
		if code := Run(context.Background(), root, tt.argv, &stderr); code != tt.code || debug != tt.debug {
			t.Errorf("%v: exit %d, debug %t; want %d, %t (%s)", tt.argv, code, debug, tt.code, tt.debug, stderr.String())
		}
	}
}
