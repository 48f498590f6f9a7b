package clikit

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/spf13/cobra"
)

// --version and the version subcommand print the same text: the program's
// version (devel when the build says nothing), the etcd API, and Go's.
func TestVersion(t *testing.T) {
	v := Version("walkit")
	if v.Version != "devel" || v.API != "3.6" || v.Go != runtime.Version() {
		t.Fatalf("%+v", v)
	}
	for _, argv := range [][]string{{"--version"}, {"version"}} {
		root := &cobra.Command{Use: "walkit", SilenceErrors: true, SilenceUsage: true, RunE: func(*cobra.Command, []string) error { return nil }}
		root.PersistentFlags().BoolP("verbose", "v", false, "")
		AddVersion(root, v.Text())
		var out, stderr bytes.Buffer
		root.SetOut(&out)
		if code := Run(context.Background(), root, argv, &stderr); code != ExitOK {
			t.Fatalf("%v: exit %d: %s", argv, code, stderr.String())
		}
		want := "walkit version: devel\nAPI version: 3.6\nGit SHA: Not provided\nGo Version: " + runtime.Version() + "\nGo OS/Arch: " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
		if out.String() != want {
			t.Errorf("%v: %q, want %q", argv, out.String(), want)
		}
	}
}

// The server's form is etcd's four lines, then lifeboat's own version.
func TestEtcdVersionText(t *testing.T) {
	v := VersionInfo{Program: "lifeboat", Version: "v0.1.0", GitSHA: "abc123", Go: "go1.26.8", OSArch: "linux/amd64", API: "3.6"}
	want := "etcd Version: 3.6.6\nGit SHA: abc123\nGo Version: go1.26.8\nGo OS/Arch: linux/amd64\nlifeboat Version: v0.1.0\n"
	if got := v.EtcdText("3.6.6"); got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
