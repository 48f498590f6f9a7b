package walkit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A directory without segments says what it holds instead.
func TestListSegmentsSaysWhyNone(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"empty", nil, "walkit: file not found in "},
		{"other files", []string{"notes.txt"}, "walkit: file not found in "},
		{"bad names", []string{"foo.wal", "1-2.wal"}, ": no valid segment names, expected %016x-%016x.wal (found 1-2.wal, foo.wal)"},
		{"many bad names", []string{"a.wal", "b.wal", "c.wal", "d.wal", "e.wal"}, "(found a.wal, b.wal, c.wal and 2 more)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := ListSegments(dir)
			if !errors.Is(err, ErrFileNotFound) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ListSegments: %v, want ErrFileNotFound saying %q", err, tt.want)
			}
		})
	}
}
