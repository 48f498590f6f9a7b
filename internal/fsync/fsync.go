// Package fsync makes what was written to a directory durable: a file
// created, renamed or removed in it survives a crash once Dir returns.
package fsync

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dir fsyncs the directory dir.
func Dir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// File creates (or truncates) path with data and fsyncs it and its
// directory.
func File(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("fsync file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync file %s: %w", path, err)
	}
	return Dir(filepath.Dir(path))
}
