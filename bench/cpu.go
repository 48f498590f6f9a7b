package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/lifeboat-dev/lifeboat/internal/etcdproc"
)

// clockTick is the unit of /proc/<pid>/stat's CPU times (USER_HZ, 100 on
// every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// cpuMeasured reports whether process CPU times can be read (/proc).
func cpuMeasured() bool {
	_, err := processCPU(os.Getpid())
	return err == nil
}

// clusterCPU is the CPU time, user and system, used so far by every
// running member of c.
func clusterCPU(c *etcdproc.Cluster) (time.Duration, error) {
	var total time.Duration
	for _, m := range c.Members {
		pid := m.Pid()
		if pid == 0 {
			continue
		}
		d, err := processCPU(pid)
		if err != nil {
			return 0, fmt.Errorf("member %s: %w", m.Name, err)
		}
		total += d
	}
	return total, nil
}

// processCPU is the user and system CPU time of process pid, all its
// threads, from /proc/<pid>/stat (fields 14 and 15).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks int64
	for _, field := range f[11:13] {
		n, err := strconv.ParseInt(string(field), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
