// Package etcdflags is etcdctl's connection flags for every Lifeboat tool
// that talks to a cluster (snapkit save, backupd, lbtop): --endpoints,
// --dial-timeout, --cacert, --cert, --key, --insecure-skip-tls-verify,
// --user, --password, optionally --command-timeout, each with its ETCDCTL_*
// variable, and the clientv3.Config they make.
package etcdflags

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/term"
)

// Flags are etcdctl's connection flags.
type Flags struct {
	Endpoints          []string
	DialTimeout        time.Duration
	CommandTimeout     time.Duration // only with AddCommandTimeout
	CACert, Cert, Key  string
	InsecureSkipVerify bool
	User, Password     string
}

// names are the flags that take their ETCDCTL_* variable, as in etcdctl.
var names = []string{"endpoints", "dial-timeout", "command-timeout", "cacert", "cert", "key", "insecure-skip-tls-verify", "user", "password"}

// EnvName is the variable of a flag: --dial-timeout is ETCDCTL_DIAL_TIMEOUT.
func EnvName(flag string) string {
	return "ETCDCTL_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func usage(flag, text string) string { return text + " (env " + EnvName(flag) + ")" }

// AddFlags registers the connection flags on fs, with etcdctl's defaults.
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.Endpoints, "endpoints", []string{"127.0.0.1:2379"}, usage("endpoints", "gRPC endpoints"))
	fs.DurationVar(&f.DialTimeout, "dial-timeout", 2*time.Second, usage("dial-timeout", "dial timeout for client connections"))
	fs.StringVar(&f.CACert, "cacert", "", usage("cacert", "verify certificates of TLS-enabled secure servers using this CA bundle"))
	fs.StringVar(&f.Cert, "cert", "", usage("cert", "identify secure client using this TLS certificate file"))
	fs.StringVar(&f.Key, "key", "", usage("key", "identify secure client using this TLS key file"))
	fs.BoolVar(&f.InsecureSkipVerify, "insecure-skip-tls-verify", false, usage("insecure-skip-tls-verify", "skip server certificate verification"))
	fs.StringVar(&f.User, "user", "", usage("user", "username[:password] for authentication (prompt if password is not supplied)"))
	fs.StringVar(&f.Password, "password", "", usage("password", "password for authentication (if this option is used, --user option shouldn't include password)"))
}

// AddCommandTimeout registers --command-timeout, whose meaning is the
// command's own.
func (f *Flags) AddCommandTimeout(fs *pflag.FlagSet, def time.Duration, text string) {
	fs.DurationVar(&f.CommandTimeout, "command-timeout", def, usage("command-timeout", text))
}

// ApplyEnv sets every connection flag of fs not given on the command line
// from its ETCDCTL_* variable, as etcdctl does; a flag wins over its
// variable.
func ApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []error
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil || f.Changed {
			continue
		}
		env := EnvName(name)
		if v, ok := lookup(env); ok {
			if err := fs.Set(name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	}
	return errors.Join(errs...)
}

// NonEmpty makes a getenv a lookup for ApplyEnv in which an empty
// variable is unset.
func NonEmpty(getenv func(string) string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	}
}

// Config builds the client configuration. readPassword asks for the
// password when --user has none and --password is not given; nil means
// there is no one to ask, and the password stays empty.
func (f *Flags) Config(readPassword func() (string, error)) (clientv3.Config, error) {
	if len(f.Endpoints) == 0 {
		return clientv3.Config{}, errors.New("no --endpoints")
	}
	if f.DialTimeout <= 0 {
		return clientv3.Config{}, errors.New("--dial-timeout must be positive")
	}
	cfg := clientv3.Config{Endpoints: f.Endpoints, DialTimeout: f.DialTimeout}
	if f.User != "" {
		name, password, hasPassword := strings.Cut(f.User, ":")
		switch {
		case hasPassword && f.Password != "":
			return clientv3.Config{}, errors.New("--password given, and a password in --user too")
		case !hasPassword && f.Password != "":
			password = f.Password
		case !hasPassword && readPassword != nil:
			var err error
			if password, err = readPassword(); err != nil {
				return clientv3.Config{}, fmt.Errorf("read password: %w", err)
			}
		}
		cfg.Username, cfg.Password = name, password
	} else if f.Password != "" {
		return clientv3.Config{}, errors.New("--password needs --user")
	}
	secure := f.CACert != "" || f.Cert != "" || f.Key != "" || f.InsecureSkipVerify
	for _, ep := range f.Endpoints {
		secure = secure || strings.HasPrefix(ep, "https://")
	}
	if secure {
		if (f.Cert == "") != (f.Key == "") {
			return clientv3.Config{}, errors.New("--cert and --key go together")
		}
		info := transport.TLSInfo{CertFile: f.Cert, KeyFile: f.Key, TrustedCAFile: f.CACert, InsecureSkipVerify: f.InsecureSkipVerify}
		tc, err := info.ClientConfig()
		if err != nil {
			return clientv3.Config{}, fmt.Errorf("TLS: %w", err)
		}
		cfg.TLS = tc
	}
	return cfg, nil
}

// PromptPassword reads a password from the terminal on stdin, as etcdctl
// does, asking on w; it fails when stdin is not a terminal.
func PromptPassword(w io.Writer) (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("--user has no password and stdin is not a terminal")
	}
	fmt.Fprint(w, "Password: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(w)
	return string(b), err
}
