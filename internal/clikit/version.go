package clikit

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	etcdversion "go.etcd.io/etcd/api/v3/version"
)

// version is Lifeboat's version, set at build time with
// -ldflags "-X github.com/lifeboat-dev/lifeboat/internal/clikit.version=v1.2.3";
// without it the module version from the build info, else "devel".
var version string

// VersionInfo is what `<tool> version` prints.
type VersionInfo struct {
	Program string
	Version string // Lifeboat's
	GitSHA  string // vcs.revision from the build info; empty when the build did not record it
	Go      string // runtime.Version()
	OSArch  string // GOOS/GOARCH
	API     string // the etcd API version spoken (go.etcd.io/etcd/api/v3/version.APIVersion)
}

// Version describes this binary, named program.
func Version(program string) VersionInfo {
	v := VersionInfo{Program: program, Version: version, Go: runtime.Version(),
		OSArch: runtime.GOOS + "/" + runtime.GOARCH, API: etcdversion.APIVersion}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.GitSHA = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	return v
}

func (v VersionInfo) gitSHA() string {
	if v.GitSHA == "" {
		return "Not provided"
	}
	return v.GitSHA
}

// Text is the tools' form, etcdctl's first lines and then the build:
//
//	walkit version: devel
//	API version: 3.6
//	Git SHA: ...
//	Go Version: go1.26.8
//	Go OS/Arch: linux/amd64
func (v VersionInfo) Text() string {
	return fmt.Sprintf("%s version: %s\nAPI version: %s\nGit SHA: %s\nGo Version: %s\nGo OS/Arch: %s\n",
		v.Program, v.Version, v.API, v.gitSHA(), v.Go, v.OSArch)
}

// EtcdText is `etcd --version`'s form, for a server that stands in for
// etcd at etcdVersion, followed by the program's own version:
//
//	etcd Version: 3.6.6
//	Git SHA: ...
//	Go Version: go1.26.8
//	Go OS/Arch: linux/amd64
//	lifeboat Version: devel
func (v VersionInfo) EtcdText(etcdVersion string) string {
	return fmt.Sprintf("etcd Version: %s\nGit SHA: %s\nGo Version: %s\nGo OS/Arch: %s\n%s Version: %s\n",
		etcdVersion, v.gitSHA(), v.Go, v.OSArch, v.Program, v.Version)
}

// AddVersion gives root a --version flag and a version subcommand that
// both print text.
func AddVersion(root *cobra.Command, text string) {
	root.Version = strings.TrimSuffix(text, "\n")
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version of " + root.Name() + ", of Go, and of the etcd API it speaks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), text)
			return err
		},
	})
}
