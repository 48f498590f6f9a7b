package netproxy

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ProcIdentifier names the dialer of a connection among local processes:
// pids returns the candidate nodes and their process IDs, and the node
// whose process owns the dialing socket is the dialer (found in Linux's
// /proc/net/tcp{,6} and /proc/<pid>/fd). Anyone if none does, or off Linux.
func ProcIdentifier(pids func() map[string]int) Identifier {
	return func(remote, local net.Addr) string {
		r, ok1 := remote.(*net.TCPAddr)
		l, ok2 := local.(*net.TCPAddr)
		if !ok1 || !ok2 {
			return Anyone
		}
		inode, err := socketInode(r, l)
		if err != nil {
			return Anyone
		}
		link := "socket:[" + strconv.FormatUint(inode, 10) + "]"
		for node, pid := range pids() {
			if ownsSocket(pid, link) {
				return node
			}
		}
		return Anyone
	}
}

// socketInode finds the inode of the socket whose own address is laddr and
// whose peer is raddr.
func socketInode(laddr, raddr *net.TCPAddr) (uint64, error) {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		inode, ok, err := findSocket(table, laddr, raddr)
		if err != nil {
			return 0, err
		}
		if ok {
			return inode, nil
		}
	}
	return 0, fmt.Errorf("netproxy: no socket %v -> %v", laddr, raddr)
}

func findSocket(table string, laddr, raddr *net.TCPAddr) (uint64, bool, error) {
	f, err := os.Open(table)
	if err != nil {
		return 0, false, fmt.Errorf("netproxy: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 {
			continue
		}
		if !sameAddr(fields[1], laddr) || !sameAddr(fields[2], raddr) {
			continue
		}
		inode, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("netproxy: %s: inode %q: %w", table, fields[9], err)
		}
		return inode, true, sc.Err()
	}
	return 0, false, sc.Err()
}

// sameAddr compares a /proc/net/tcp address ("0100007F:1F90": the IP in
// 32-bit words of host byte order, the port big-endian) with a.
func sameAddr(s string, a *net.TCPAddr) bool {
	ipHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil || int(port) != a.Port {
		return false
	}
	raw, err := hex.DecodeString(ipHex)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return false
	}
	// Each word is printed as the number its bytes make in host order.
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	return ip.Equal(a.IP)
}

func ownsSocket(pid int, link string) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == link {
			return true
		}
	}
	return false
}
