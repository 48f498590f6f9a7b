package clikit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
