package cli

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// transportSecurityKeys maps the keys of etcd's client-transport-security
// and peer-transport-security sections to flags (without the peer- prefix);
// the peer's allowed-cn is --peer-cert-allowed-cn.
var transportSecurityKeys = map[string]string{
	"cert-file":        "cert-file",
	"key-file":         "key-file",
	"client-cert-auth": "client-cert-auth",
	"trusted-ca-file":  "trusted-ca-file",
	"auto-tls":         "auto-tls",
}

// applyConfigFile sets the flags of fs from an etcd YAML configuration
// file, whose keys are the flag names. A key that names no flag of
// lifeboat's is refused if it sets anything (etcd would act on it), and
// reported in ignored if it holds only an empty or zero value.
func applyConfigFile(fs *pflag.FlagSet, path string) (ignored []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config-file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("--config-file %s: %w", path, err)
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		v := doc[k]
		switch k {
		case "client-transport-security", "peer-transport-security":
			sub, ok := v.(map[string]any)
			if v != nil && !ok {
				errs = append(errs, fmt.Errorf("%s: want a mapping", k))
				continue
			}
			prefix := strings.TrimSuffix(k, "transport-security")
			if prefix == "client-" {
				prefix = ""
			}
			for sk, sv := range sub {
				flag, ok := transportSecurityKeys[sk]
				if prefix == "peer-" && sk == "allowed-cn" {
					flag, ok = "cert-allowed-cn", true
				}
				if !ok {
					if isZero(sv) {
						ignored = append(ignored, k+"."+sk)
						continue
					}
					errs = append(errs, fmt.Errorf("%s.%s: lifeboat does not implement it", k, sk))
					continue
				}
				errs = append(errs, setFromYAML(fs, prefix+flag, k+"."+sk, sv))
			}
		case "config-file":
			errs = append(errs, errors.New("config-file: a configuration file cannot name another"))
		default:
			if fs.Lookup(k) == nil {
				if isZero(v) {
					ignored = append(ignored, k)
					continue
				}
				errs = append(errs, fmt.Errorf("%s: lifeboat does not implement it", k))
				continue
			}
			errs = append(errs, setFromYAML(fs, k, k, v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("--config-file %s: %w", path, err)
	}
	return ignored, nil
}

// setFromYAML sets a flag from a YAML value: lists join with commas, and an
// integer for a duration flag is nanoseconds (etcd's JSON form of
// time.Duration). A null leaves the flag at its default.
func setFromYAML(fs *pflag.FlagSet, flag, key string, v any) error {
	if v == nil {
		return nil
	}
	f := fs.Lookup(flag)
	var s string
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		s = strings.Join(parts, ",")
	case int:
		s = strconv.Itoa(x)
		if f.Value.Type() == "duration" {
			s = time.Duration(x).String()
		}
	case map[string]any:
		return fmt.Errorf("%s: want a value, not a mapping", key)
	default:
		s = fmt.Sprint(x)
	}
	if err := fs.Set(flag, s); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

func isZero(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case bool:
		return !x
	case int:
		return x == 0
	case float64:
		return x == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		for _, e := range x {
			if !isZero(e) {
				return false
			}
		}
		return true
	}
	return false
}
