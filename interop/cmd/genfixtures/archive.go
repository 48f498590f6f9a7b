package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// archiveTime is the modification time of every archived file, so that an
// archive depends only on the files' contents.
var archiveTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// archiveMembers writes <stage>/<name>.tar.gz of each member's data dir,
// with paths <name>/member/... The 64 MB preallocated WAL tails are mostly
// zeros and compress to almost nothing.
func archiveMembers(stage string, ms []*member) error {
	for _, m := range ms {
		if err := archive(filepath.Join(stage, m.name+".tar.gz"), m.dataDir, m.name); err != nil {
			return fmt.Errorf("archiving %s: %w", m.name, err)
		}
	}
	return nil
}

// archive writes the tree at dir as a gzipped tar whose paths start with
// prefix. Entries are in lexical order, with fixed times and no owners.
func archive(dst, dir, prefix string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression)
	if err != nil {
		f.Close()
		return err
	}
	tw := tar.NewWriter(zw)
	werr := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file or directory", path)
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(filepath.Join(prefix, rel))
		if d.IsDir() {
			h.Name += "/"
		}
		h.ModTime, h.AccessTime, h.ChangeTime = archiveTime, time.Time{}, time.Time{}
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	for _, c := range []io.Closer{tw, zw, f} {
		if cerr := c.Close(); werr == nil {
			werr = cerr
		}
	}
	if werr != nil {
		os.Remove(dst)
	}
	return werr
}
