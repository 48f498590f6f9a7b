package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// etcdPackages maps each etcd binary to its main package.
var etcdPackages = map[string]string{
	"etcd":    "go.etcd.io/etcd/server/v3",
	"etcdctl": "go.etcd.io/etcd/etcdctl/v3",
	"etcdutl": "go.etcd.io/etcd/etcdutl/v3",
}

var etcdNames = []string{"etcd", "etcdctl", "etcdutl"}

// oracles lists the programs of cmd/ that tests run as oracles.
var oracles = []string{"walread", "walwrite", "snapread", "hashkv"}

func main() {
	lg := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(lg, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "build-etcd:", err)
		os.Exit(1)
	}
}

func run(lg *slog.Logger, args []string) error {
	fl := flag.NewFlagSet("build-etcd", flag.ContinueOnError)
	module := fl.String("module", ".", "directory of the module to build etcd from (\"etcd35\" for v3.5); oracles always come from the interop module")
	cache := fl.String("cache", "", "cache root (default $LIFEBOAT_ETCD_CACHE, else $HOME/.cache/lifeboat-etcd)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	names := fl.Args()
	if len(names) == 0 {
		names = etcdNames
		if *module == "." {
			names = append(slices.Clone(etcdNames), oracles...)
		}
	}
	root, err := cacheRoot(*cache)
	if err != nil {
		return err
	}
	b := builder{lg: lg, root: root, module: *module}
	for _, name := range names {
		path, err := b.binary(name)
		if err != nil {
			return err
		}
		fmt.Println(path)
	}
	return nil
}

func cacheRoot(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if dir := os.Getenv("LIFEBOAT_ETCD_CACHE"); dir != "" {
		return dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no LIFEBOAT_ETCD_CACHE and no home directory: %w", err)
	}
	return filepath.Join(home, ".cache", "lifeboat-etcd"), nil
}

type builder struct {
	lg      *slog.Logger
	root    string
	module  string
	version string // etcd server version of module, read once
}

// binary returns the cached path of name, building it first if needed.
func (b *builder) binary(name string) (string, error) {
	version, err := b.etcdVersion()
	if err != nil {
		return "", err
	}
	verDir := filepath.Join(b.root, version)
	pkg, dir, dst := etcdPackages[name], b.module, filepath.Join(verDir, name)
	if pkg == "" {
		if !slices.Contains(oracles, name) {
			return "", fmt.Errorf("unknown binary %q (want one of %v or %v)", name, etcdNames, oracles)
		}
		if b.module != "." {
			return "", fmt.Errorf("oracle %s is built from the interop module, not -module %s", name, b.module)
		}
		sum, err := oracleHash(name)
		if err != nil {
			return "", err
		}
		pkg, dst = "./cmd/"+name, filepath.Join(verDir, "oracle-"+sum, name)
	}
	if exists(dst) {
		return dst, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	unlock, err := lock(filepath.Join(verDir, ".build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if exists(dst) { // another process built it while we waited
		return dst, nil
	}
	b.lg.Info("building", "binary", name, "package", pkg, "module", dir, "version", version, "to", dst)
	tmp := fmt.Sprintf("%s.tmp-%d", dst, os.Getpid())
	if out, err := goCmd(dir, "build", "-trimpath", "-o", tmp, pkg); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build %s (in %s): %w\n%s", pkg, dir, err, out)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", err
	}
	return dst, nil
}

func (b *builder) etcdVersion() (string, error) {
	if b.version != "" {
		return b.version, nil
	}
	out, err := goCmd(b.module, "list", "-m", "-f", "{{.Version}}", etcdPackages["etcd"])
	if err != nil {
		return "", fmt.Errorf("reading the etcd version of module %s: %w\n%s", b.module, err, out)
	}
	b.version = strings.TrimSpace(string(out))
	if !strings.HasPrefix(b.version, "v3.") {
		return "", fmt.Errorf("module %s: unexpected etcd version %q", b.module, b.version)
	}
	return b.version, nil
}

// oracleHash is a SHA-256 prefix over go.mod, go.sum, cmd/<name>/ and
// internal/ (each file's path and contents, in path order).
func oracleHash(name string) (string, error) {
	files := []string{"go.mod", "go.sum"}
	for _, dir := range []string{filepath.Join("cmd", name), "internal"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) && path == dir {
					return nil
				}
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("hashing oracle %s: %w", name, err)
		}
	}
	slices.Sort(files)
	h := sha256.New()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("hashing oracle %s: %w", name, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(f), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func goCmd(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// lock takes an exclusive flock on path, waiting for other holders.
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("build lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("build lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}

func exists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
