package testutil

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ListenInodes are the inodes (sorted, each once) of the TCP sockets that
// pid holds open and that listen on port, from /proc/<pid>/fd and
// /proc/net/tcp{,6}. A socket passed to another process keeps its inode: the
// same inode in two processes is one socket handed over, not a second bind.
func ListenInodes(pid, port int) ([]uint64, error) {
	listening := map[uint64]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// sl local_address rem_address st ... uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" { // 0A: TCP_LISTEN
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			p, err := strconv.ParseUint(fs[1][i+1:], 16, 16)
			ino, err2 := strconv.ParseUint(fs[9], 10, 64)
			if err == nil && err2 == nil && int(p) == port {
				listening[ino] = true
			}
		}
		fh.Close()
	}
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("no fds of pid %d (gone?)", pid)
	}
	var out []uint64
	for _, fd := range fds {
		link, _ := os.Readlink(fd)
		s, ok := strings.CutPrefix(link, "socket:[")
		ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
		if ok && err == nil && listening[ino] && !slices.Contains(out, ino) {
			out = append(out, ino)
		}
	}
	slices.Sort(out)
	return out, nil
}
