package backupd

import (
	"os"

	sysunix "golang.org/x/sys/unix"
)

// preallocate reserves size bytes of disk for the spool before the stream
// is written into it, keeping its size (FALLOC_FL_KEEP_SIZE: the file
// grows only as the stream is written, so the read-back's size check
// still counts the bytes written). Written into blocks already allocated,
// the stream costs ext4 about a third of the CPU time of its delayed
// allocation (BENCHMARKS.md, backupd). It is only a hint: a file system
// that cannot preallocate gets the writes as they come.
func preallocate(f *os.File, size int64) {
	_ = sysunix.Fallocate(int(f.Fd()), sysunix.FALLOC_FL_KEEP_SIZE, 0, size)
}
