package osutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Holder is a process that has a Unix socket open.
type Holder struct {
	PID  int
	UID  int // -1 when unknown
	Comm string
}

func (h Holder) String() string {
	s := "pid " + strconv.Itoa(h.PID)
	if h.Comm != "" {
		s += " (" + h.Comm + ")"
	}
	if h.UID >= 0 {
		s += " uid " + strconv.Itoa(h.UID)
	}
	return s
}

// AbstractHolders names the processes holding a socket bound to the abstract
// Unix name (without its leading '@' or NUL; NUL padding, which
// /proc/net/unix shows as '@', is ignored). It reads /proc/net/unix for the
// socket's inode and /proc/<pid>/fd for who has it open; processes whose fd
// table this process may not read (other users' when not root) are missed.
// It returns the inodes found too, so a caller can say "bound, holder
// unknown" when no holder is visible.
func AbstractHolders(name string) (holders []Holder, inodes []uint64, err error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	inodes, err = abstractInodes(f, name)
	if err != nil || len(inodes) == 0 {
		return nil, inodes, err
	}
	want := map[string]bool{}
	for _, ino := range inodes {
		want["socket:["+strconv.FormatUint(ino, 10)+"]"] = true
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, inodes, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if holdsAny(pid, want) {
			holders = append(holders, Holder{PID: pid, UID: procUID(pid), Comm: procComm(pid)})
		}
	}
	return holders, inodes, nil
}

// DescribeAbstractHolders is AbstractHolders as text for an error message:
// "held by pid 12 (nc) uid 65534", "bound by a process this user cannot see
// (socket inode 4711)", or "" when nothing holds the name.
func DescribeAbstractHolders(name string) string {
	hs, inodes, err := AbstractHolders(name)
	switch {
	case err != nil:
		return ""
	case len(hs) > 0:
		parts := make([]string, len(hs))
		for i, h := range hs {
			parts[i] = h.String()
		}
		return "held by " + strings.Join(parts, ", ")
	case len(inodes) > 0:
		return fmt.Sprintf("bound by a process this user cannot see (socket inode %d)", inodes[0])
	}
	return ""
}

// abstractInodes scans a /proc/net/unix table for sockets bound to the
// abstract name: "Num RefCount Protocol Flags Type St Inode Path", the path
// of an abstract socket shown as '@' followed by the name, NULs as '@'.
func abstractInodes(r io.Reader, name string) ([]uint64, error) {
	name = strings.TrimLeft(name, "@\x00")
	name = strings.TrimRight(name, "\x00")
	var out []uint64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || !strings.HasPrefix(f[7], "@") {
			continue
		}
		if strings.TrimRight(f[7][1:], "@") != name {
			continue
		}
		ino, err := strconv.ParseUint(f[6], 10, 64)
		if err == nil {
			out = append(out, ino)
		}
	}
	return out, sc.Err()
}

func holdsAny(pid int, want map[string]bool) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return false
	}
	for _, n := range names {
		if l, err := os.Readlink(dir + "/" + n); err == nil && want[l] {
			return true
		}
	}
	return false
}

func procUID(pid int) int {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid))
	if err != nil {
		return -1
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

func procComm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
