// Package objstoretest gives tests the stores backupd supports: file:// and
// mem:// in process, and real servers started for the test on 127.0.0.1:
// versitygw for S3, fake-gcs-server for GCS and Azurite for Azure Blob. The
// servers are installed by .ci/object-stores into
// $LIFEBOAT_STORES_CACHE/bin (default ~/.cache/lifeboat-stores/bin); a test
// whose server is missing is skipped, or fails when LIFEBOAT_STORES=require
// (CI sets it), so that CI cannot pass by skipping.
package objstoretest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/lifeboat-dev/lifeboat/internal/freeport"
)

// Backend is a bucket a test may use.
type Backend struct {
	Name string
	// URL is a gocloud bucket URL for an empty bucket.
	URL string
	// Env are the variables the store's driver reads (credentials,
	// STORAGE_EMULATOR_HOST); Setenv applies them to the test process.
	Env map[string]string
	// Addr is the server's host:port, for a proxy in front of it; empty
	// for file:// and mem://.
	Addr string
}

// Setenv sets the backend's variables for the rest of the test.
func (b Backend) Setenv(t testing.TB) {
	for k, v := range b.Env {
		t.Setenv(k, v)
	}
}

// Environ is os.Environ with the backend's variables, for a child process.
func (b Backend) Environ() []string {
	env := os.Environ()
	for k, v := range b.Env {
		env = append(env, k+"="+v)
	}
	return env
}

// WithAddr returns the backend's URL and variables pointed at addr instead
// of its server (a proxy in front of it).
func (b Backend) WithAddr(addr string) Backend {
	c := b
	c.URL = strings.ReplaceAll(b.URL, b.Addr, addr)
	c.Env = map[string]string{}
	for k, v := range b.Env {
		c.Env[k] = strings.ReplaceAll(v, b.Addr, addr)
	}
	c.Addr = addr
	return c
}

// Names of the backends, in the order All returns them.
var Names = []string{"file", "mem", "s3", "gcs", "azure"}

// All returns every backend, each with a fresh bucket; servers are started
// once per test binary and stopped when it exits (see Cleanup).
func All(t testing.TB) []Backend {
	var bs []Backend
	for _, n := range Names {
		if b, ok := Get(t, n); ok {
			bs = append(bs, b)
		}
	}
	return bs
}

// Get returns one backend with a fresh bucket. A server that cannot be
// started skips the test (ok false) or, with LIFEBOAT_STORES=require, fails it.
func Get(t testing.TB, name string) (Backend, bool) {
	t.Helper()
	switch name {
	case "file":
		return Backend{Name: name, URL: "file://" + filepath.ToSlash(t.TempDir())}, true
	case "mem":
		return Backend{Name: name, URL: "mem://"}, true
	}
	srv, err := server(name)
	if err != nil {
		if os.Getenv("LIFEBOAT_STORES") == "require" {
			t.Fatalf("objstoretest: %s server: %v (LIFEBOAT_STORES=require; run .ci/object-stores)", name, err)
		}
		t.Logf("objstoretest: %s skipped: %v (run .ci/object-stores; LIFEBOAT_STORES=require makes this fail)", name, err)
		return Backend{}, false
	}
	b, err := srv.newBucket(bucketName(t))
	if err != nil {
		t.Fatalf("objstoretest: %s: new bucket: %v", name, err)
	}
	return b, true
}

var bucketSeq struct {
	sync.Mutex
	n int
}

// bucketName is a fresh valid bucket name for every store (lower case,
// 3-63 characters).
func bucketName(t testing.TB) string {
	bucketSeq.Lock()
	defer bucketSeq.Unlock()
	bucketSeq.n++
	return fmt.Sprintf("lb%d-%d", os.Getpid(), bucketSeq.n)
}

// BinDir is where .ci/object-stores installs the servers.
func BinDir() string {
	root := os.Getenv("LIFEBOAT_STORES_CACHE")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "lifeboat-stores")
	}
	return filepath.Join(root, "bin")
}

type objServer struct {
	name string
	addr string
	dir  string
	cmd  *exec.Cmd
	// exited is closed when the process has been waited for.
	exited chan struct{}
	// newBucket makes an empty bucket and the backend for it.
	newBucket func(name string) (Backend, error)
}

var (
	serversMu sync.Mutex
	servers   = map[string]*objServer{}
	failed    = map[string]error{}
)

// server starts the named server once and keeps it for the test binary.
func server(name string) (*objServer, error) {
	serversMu.Lock()
	defer serversMu.Unlock()
	if s := servers[name]; s != nil {
		return s, nil
	}
	if err := failed[name]; err != nil {
		return nil, err
	}
	s, err := start(name)
	if err != nil {
		failed[name] = err
		return nil, err
	}
	servers[name] = s
	return s, nil
}

// Cleanup stops the servers; call it from TestMain after m.Run.
func Cleanup() {
	serversMu.Lock()
	defer serversMu.Unlock()
	for n, s := range servers {
		_ = s.cmd.Process.Kill()
		<-s.exited
		os.RemoveAll(s.dir)
		delete(servers, n)
	}
}

// Well-known development credentials of the emulators.
const (
	s3Access     = "lifeboat"
	s3Secret     = "lifeboat-secret"
	azureAccount = "devstoreaccount1"
	azureKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

func start(name string) (*objServer, error) {
	dir, err := os.MkdirTemp("", "lifeboat-"+name+"-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &objServer{name: name, addr: addr, dir: dir}
	var bin string
	var args []string
	switch name {
	case "s3":
		bin = "versitygw"
		args = []string{"--access", s3Access, "--secret", s3Secret, "--port", addr, "--quiet", "posix", "--sidecar", filepath.Join(dir, "meta"), filepath.Join(dir, "data")}
		for _, d := range []string{"meta", "data"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return nil, err
			}
		}
		s.newBucket = func(bucket string) (Backend, error) {
			// versitygw's posix backend serves each top-level directory as a bucket.
			if err := os.Mkdir(filepath.Join(dir, "data", bucket), 0o755); err != nil {
				return Backend{}, err
			}
			return Backend{
				Name: name, Addr: addr,
				URL: "s3://" + bucket + "?endpoint=http://" + addr + "&use_path_style=true&disable_https=true&region=us-east-1",
				Env: map[string]string{"AWS_ACCESS_KEY_ID": s3Access, "AWS_SECRET_ACCESS_KEY": s3Secret, "AWS_REGION": "us-east-1",
					"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull},
			}, nil
		}
	case "gcs":
		bin = "fake-gcs-server"
		args = []string{"-scheme", "http", "-host", "127.0.0.1", "-port", strconv.Itoa(port), "-public-host", addr,
			"-external-url", "http://" + addr, "-backend", "filesystem", "-filesystem-root", filepath.Join(dir, "data"), "-log-level", "error"}
		s.newBucket = func(bucket string) (Backend, error) {
			body := strings.NewReader(`{"name":"` + bucket + `"}`)
			resp, err := http.Post("http://"+addr+"/storage/v1/b?project=lifeboat", "application/json", body)
			if err != nil {
				return Backend{}, err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return Backend{}, fmt.Errorf("create bucket: %s", resp.Status)
			}
			// STORAGE_EMULATOR_HOST is host:port, without a scheme.
			return Backend{Name: name, Addr: addr, URL: "gs://" + bucket,
				Env: map[string]string{"STORAGE_EMULATOR_HOST": addr}}, nil
		}
	case "azure":
		bin = "azurite-blob"
		args = []string{"--blobHost", "127.0.0.1", "--blobPort", strconv.Itoa(port), "--location", filepath.Join(dir, "data"),
			"--silent", "--skipApiVersionCheck", "--disableProductStyleUrl", "--loose"}
		s.newBucket = func(bucket string) (Backend, error) {
			cred, err := azblob.NewSharedKeyCredential(azureAccount, azureKey)
			if err != nil {
				return Backend{}, err
			}
			c, err := azblob.NewClientWithSharedKeyCredential("http://"+addr+"/"+azureAccount, cred, nil)
			if err != nil {
				return Backend{}, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := c.CreateContainer(ctx, bucket, nil); err != nil {
				return Backend{}, err
			}
			return Backend{Name: name, Addr: addr,
				URL: "azblob://" + bucket + "?protocol=http&domain=" + addr + "&localemu=true",
				Env: map[string]string{"AZURE_STORAGE_ACCOUNT": azureAccount, "AZURE_STORAGE_KEY": azureKey}}, nil
		}
	default:
		return nil, fmt.Errorf("unknown store %q", name)
	}
	path := filepath.Join(BinDir(), bin)
	if _, err := os.Stat(path); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s not installed: %w", bin, err)
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(path, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// A test binary that dies without Cleanup takes its servers along.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	var waitErr error
	s.exited = make(chan struct{})
	go func() {
		waitErr = s.cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%s exited before listening on %s (%v): %s", bin, addr, waitErr, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.cmd.Process.Kill()
			<-s.exited
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%s not listening on %s after 60s", bin, addr)
		}
	}
}

func freePort() (int, error) {
	ps, err := freeport.Pick(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}
