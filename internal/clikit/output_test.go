package clikit

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// -w takes only the command's formats, and the error and the help list them.
func TestOutputFlag(t *testing.T) {
	tests := []struct {
		argv    []string
		code    int
		format  string
		wantErr string
	}{
		{nil, ExitOK, "table", ""},
		{[]string{"-w", "json"}, ExitOK, "json", ""},
		{[]string{"--write-out=jsonl"}, ExitOK, "jsonl", ""},
		{[]string{"-w", "yaml"}, ExitUsage, "", `invalid argument "yaml" for "-w, --write-out" flag: want one of: table, json, jsonl`},
	}
	for _, tt := range tests {
		out := NewOutput("table", "json", "jsonl")
		var got string
		cmd := &cobra.Command{Use: "x", SilenceErrors: true, SilenceUsage: true,
			RunE: func(*cobra.Command, []string) error { got = out.Format(); return nil }}
		cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Usage(err) })
		out.AddFlags(cmd.Flags())
		var stderr bytes.Buffer
		code := Run(context.Background(), cmd, tt.argv, &stderr)
		if code != tt.code || got != tt.format || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("%v: exit %d, format %q, stderr %q; want %d, %q, %q", tt.argv, code, got, stderr.String(), tt.code, tt.format, tt.wantErr)
		}
		if help := cmd.Flags().Lookup("write-out").Usage; !strings.Contains(help, "table, json, jsonl") {
			t.Errorf("help %q lists no formats", help)
		}
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{-1: "-", 0: "0 B", 25_000: "25 kB", 64_000_000: "64 MB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) || IsTerminal(&bytes.Buffer{}) {
		t.Error("a file or a buffer is not a terminal")
	}
}

// Progress draws only on a terminal, only once the work has run for
// progressDelay, at most every progressEvery, and clears its line at the end.
func TestProgress(t *testing.T) {
	if p := NewProgress(&bytes.Buffer{}, "verify", 100); p != nil || p.Func() != nil {
		t.Fatal("progress on a buffer, which is not a terminal")
	}
	var nilp *Progress // every method of the no-op progress is safe
	nilp.Add(1)
	nilp.Set(1)
	nilp.Update(1, 2)
	nilp.Done()

	tests := []struct {
		name    string
		total   int64
		steps   []time.Duration // clock at each update of 10 bytes
		want    string
		cleared bool
	}{
		{"quick work draws nothing", 100, []time.Duration{0, 100 * time.Millisecond, progressDelay - 1}, "", false},
		{"slow work", 100, []time.Duration{0, progressDelay, progressDelay + 1, progressDelay + progressEvery},
			"\rverify: 20 B of 100 B (20%)\033[K\rverify: 40 B of 100 B (40%)\033[K", true},
		{"unknown total", 0, []time.Duration{progressDelay}, "\rverify: 10 B\033[K", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clock time.Time
			var w bytes.Buffer
			p := newProgress(&w, "verify", tt.total, func() time.Time { return clock })
			start := clock
			for _, at := range tt.steps {
				clock = start.Add(at)
				p.Add(10)
			}
			if got := w.String(); got != tt.want {
				t.Errorf("drawn %q, want %q", got, tt.want)
			}
			p.Done()
			if cleared := strings.HasSuffix(w.String(), "\r\033[K") && len(w.String()) > len(tt.want); cleared != tt.cleared {
				t.Errorf("cleared %t, want %t: %q", cleared, tt.cleared, w.String())
			}
		})
	}
}

// A table is etcdutl's (centred headers, right-aligned cells) unless Left,
// widths counted in runes.
func TestTable(t *testing.T) {
	tests := []struct {
		left bool
		want string
	}{
		{false, "+-------+-----+\n| FIELD |  V  |\n+-------+-----+\n|     a | été |\n| bb... |   1 |\n+-------+-----+\n"},
		{true, "+-------+-----+\n| FIELD | V   |\n+-------+-----+\n| a     | été |\n| bb... | 1   |\n+-------+-----+\n"},
	}
	for _, tt := range tests {
		tb := &Table{Headers: []string{"field", "v"}, Left: tt.left}
		tb.Add("a", "été")
		tb.Add("bb...", "1")
		var b bytes.Buffer
		if err := tb.Render(&b); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("left %t:\n%s\nwant\n%s", tt.left, b.String(), tt.want)
		}
	}
}
