package supervisor

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/hotrestart/restarter/internal/osutil"
)

// This file answers "which process holds the TCP listener for this
// address?": the listening sockets of our network namespace (local address,
// owner uid, socket inode) from sock_diag (sockdiag_linux.go), or else from
// /proc/net/tcp and tcp6 (state 0A = LISTEN), matched against the
// "socket:[inode]" links in /proc/<pid>/fd. It is the
// evidence that a readiness answer came from the generation being checked
// and not from some other process on the same address.

// tcpListener is one listening TCP socket of this network namespace.
type tcpListener struct {
	Local netip.AddrPort
	UID   int
	Inode uint64
}

// ListenOwner says who holds the listening sockets that accept connections
// for Addr.
type ListenOwner struct {
	Addr netip.AddrPort
	// Listening: some socket in this network namespace listens for Addr.
	Listening bool
	// Holders are the pids, among the ones asked about, that hold one of
	// those sockets.
	Holders []int
	// Other is a process outside the ones asked about that holds one of
	// those sockets (0: none found). OtherUID is the listening socket's
	// owner, which is known even when the holder's /proc/<pid>/fd cannot be
	// read (another user's process): then Other is 0 and OtherUID >= 0.
	Other    int
	OtherUID int
}

// listenOwner reports who holds the listener for addr: which of pids, and
// when none of them, one other process (looked for only then; it reads every
// readable /proc/<pid>/fd).
func listenOwner(addr netip.AddrPort, pids []int) (ListenOwner, error) {
	out := ListenOwner{Addr: addr, OtherUID: -1}
	ls, err := tcpListeners()
	if err != nil {
		return out, err
	}
	inodes := map[uint64]int{} // inode -> socket uid
	for _, l := range ls {
		if accepts(l.Local, addr) {
			inodes[l.Inode] = l.UID
		}
	}
	if len(inodes) == 0 {
		return out, nil
	}
	out.Listening = true
	var unreadable []int
	for _, pid := range pids {
		switch ino, err := holdsAnyErr(pid, inodes); {
		case ino != 0:
			out.Holders = append(out.Holders, pid)
		case errors.Is(err, os.ErrPermission):
			unreadable = append(unreadable, pid)
		}
	}
	if len(out.Holders) > 0 {
		return out, nil
	}
	for _, uid := range inodes {
		out.OtherUID = uid
	}
	mine := map[int]bool{}
	for _, pid := range pids {
		mine[pid] = true
	}
	for _, pid := range osutil.PIDs() {
		if !mine[pid] && holdsAny(pid, inodes) != 0 {
			out.Other = pid
			return out, nil
		}
	}
	// A process of the generation whose descriptors this user may not read
	// (it changed uid, and we lack CAP_SYS_PTRACE): a listener owned by its
	// uid, that no process we can read holds, is counted as its.
	for _, pid := range unreadable {
		if uid, ok := procUID(pid); ok {
			for _, suid := range inodes {
				if suid == uid {
					out.Holders = append(out.Holders, pid)
					out.Other, out.OtherUID = 0, -1
					return out, nil
				}
			}
		}
	}
	return out, nil
}

// procUID is the owner of /proc/<pid> (the process's effective uid).
func procUID(pid int) (int, bool) {
	fi, err := os.Stat("/proc/" + strconv.Itoa(pid))
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// accepts reports whether a socket listening on local takes connections
// to addr: the same port, and the same address or a wildcard of its family
// (an IPv6 wildcard also takes IPv4 unless the socket is IPV6_V6ONLY, which
// /proc does not show: counted as accepting).
func accepts(local, addr netip.AddrPort) bool {
	if local.Port() != addr.Port() {
		return false
	}
	la, a := local.Addr().Unmap(), addr.Addr().Unmap()
	switch {
	case la == a:
		return true
	case la.IsUnspecified() && la.Is4():
		return a.Is4()
	case la.IsUnspecified():
		return true
	}
	return false
}

// tcpListeners returns the LISTEN sockets of this process's network
// namespace (the one its probes connect from): from sock_diag, which is
// cheap however many connections there are, else from /proc/net/tcp and
// tcp6 (a kernel or sandbox without sock_diag).
func tcpListeners() ([]tcpListener, error) {
	if ls, err := tcpListenersDiag(); err == nil {
		return ls, nil
	}
	return tcpListenersProc()
}

// tcpListenersProc reads the LISTEN sockets from /proc/net/tcp and tcp6. A
// missing tcp6 (IPv6 disabled) is not an error.
func tcpListenersProc() ([]tcpListener, error) {
	var out []tcpListener
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(name, "6") {
			continue
		}
		if err != nil {
			return nil, err
		}
		ls, err := parseTCPTable(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, ls...)
	}
	return out, nil
}

const tcpListenState = "0A"

// parseTCPTable parses the format of /proc/net/tcp{,6}: a header line, then
// "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
// ...", addresses as hex words in host byte order and a hex port.
func parseTCPTable(f *os.File) ([]tcpListener, error) {
	var out []tcpListener
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || fs[3] != tcpListenState {
			continue
		}
		local, err := parseHexAddrPort(fs[1])
		if err != nil {
			return nil, err
		}
		uid, err := strconv.Atoi(fs[7])
		if err != nil {
			return nil, fmt.Errorf("uid %q: %w", fs[7], err)
		}
		inode, err := strconv.ParseUint(fs[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("inode %q: %w", fs[9], err)
		}
		out = append(out, tcpListener{Local: local, UID: uid, Inode: inode})
	}
	return out, sc.Err()
}

// parseHexAddrPort decodes "0100007F:2694" (IPv4) or 32 hex digits (IPv6):
// each 32-bit word is printed in host byte order, the port in plain hex.
func parseHexAddrPort(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q: no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: port: %w", s, err)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q: not 8 or 32 hex digits", s)
	}
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// holdsAny returns the first of inodes that pid holds open, or 0. A process
// that is gone or cannot be read holds nothing.
func holdsAny[V any](pid int, inodes map[uint64]V) uint64 {
	ino, _ := holdsAnyErr(pid, inodes)
	return ino
}

// holdsAnyErr is holdsAny that also says why it found nothing (the
// process is gone, or its descriptors may not be read).
func holdsAnyErr[V any](pid int, inodes map[uint64]V) (uint64, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		s, ok := strings.CutPrefix(link, "socket:[")
		if !ok {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
		if err != nil {
			continue
		}
		if _, ok := inodes[ino]; ok {
			return ino, nil
		}
	}
	return 0, nil
}

// processTree returns the live processes of a generation: root and its
// descendants, and every descendant of this process whose environment has
// envKV (RESTART_EPOCH=<n>: a start script's proxy is re-parented to the
// restarter, which is a subreaper, when the script exits) with its own
// descendants.
func processTree(root int, envKV string) []int {
	children := map[int][]int{}
	var pids []int
	for _, pid := range osutil.PIDs() {
		if ppid, state, ok := readStat(pid); ok && state != 'Z' {
			children[ppid] = append(children[ppid], pid)
			pids = append(pids, pid)
		}
	}
	in := map[int]bool{}
	var out []int
	var add func(int)
	add = func(pid int) {
		if in[pid] {
			return
		}
		in[pid] = true
		out = append(out, pid)
		for _, c := range children[pid] {
			add(c)
		}
	}
	if _, _, ok := readStat(root); ok {
		add(root)
	}
	if envKV != "" {
		// Our descendants only: a process elsewhere with the same variable
		// is not ours.
		mine := map[int]bool{}
		var mark func(int)
		mark = func(pid int) {
			for _, c := range children[pid] {
				mine[c] = true
				mark(c)
			}
		}
		mark(os.Getpid())
		for _, pid := range pids {
			if mine[pid] && !in[pid] && environHas(pid, envKV) {
				add(pid)
			}
		}
	}
	return out
}

// resolveHostPort turns "host:port" into the addresses a probe may connect
// to (a name is resolved; "localhost" usually gives 127.0.0.1 and ::1).
func resolveHostPort(ctx context.Context, hostport string) ([]netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	pn, err := net.DefaultResolver.LookupPort(ctx, "tcp", port)
	if err != nil {
		return nil, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(pn))}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, a := range ips {
		out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(pn)))
	}
	return out, nil
}

// isLocalAddr reports whether a is an address of this host (loopback, or
// one of its interfaces' addresses), where a listener would show in
// /proc/net/tcp.
func isLocalAddr(a netip.Addr) bool {
	if a.IsLoopback() || a.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}

// ListenerError says that the listener a readiness check relies on is not
// held by the generation being checked.
type ListenerError struct {
	Addr  string // host:port as given
	Epoch uint32
	// Listening: something listens on Addr (held by Other, or by a
	// process that cannot be inspected); false: nothing listens yet.
	Listening bool
	Other     int    // the holder's pid, 0 when unknown
	OtherDesc string // what the holder is ("epoch 2 of this restarter", its command line)
	OtherUID  int    // the listening socket's owner uid, -1 when unknown
}

// Unwrap makes "nothing listens" an ECONNREFUSED, which is what a
// connection to the address gets (the supervisor's liveness check tells a
// gone address from a hang by it).
func (e *ListenerError) Unwrap() error {
	if !e.Listening {
		return syscall.ECONNREFUSED
	}
	return nil
}

func (e *ListenerError) Error() string {
	switch {
	case !e.Listening:
		return fmt.Sprintf("nothing listens on %s yet", e.Addr)
	case e.Other > 0:
		return fmt.Sprintf("%s is held by pid %d (%s), not by epoch %d", e.Addr, e.Other, e.OtherDesc, e.Epoch)
	default:
		return fmt.Sprintf("%s is held by a process of uid %d that cannot be inspected (another user's?), not by epoch %d",
			e.Addr, e.OtherUID, e.Epoch)
	}
}

// generationHolds returns nil when a process of the generation p (its
// process tree, see processTree) holds a TCP listener that accepts
// connections to hostport, and a *ListenerError saying who does otherwise.
func generationHolds(ctx context.Context, hostport string, p Probe) error {
	addrs, err := resolveHostPort(ctx, hostport)
	if err != nil {
		return fmt.Errorf("listener owner of %s: %w", hostport, err)
	}
	tree := processTree(p.PID, "RESTART_EPOCH="+strconv.FormatUint(uint64(p.Epoch), 10))
	le := &ListenerError{Addr: hostport, Epoch: p.Epoch, OtherUID: -1}
	for _, a := range addrs {
		o, err := listenOwner(a, tree)
		if err != nil {
			return fmt.Errorf("listener owner of %s: %w", hostport, err)
		}
		if len(o.Holders) > 0 {
			return nil
		}
		if !o.Listening {
			continue
		}
		le.Listening = true
		if o.Other > 0 && le.Other == 0 {
			le.Other, le.OtherDesc = o.Other, describeProcess(o.Other)
		}
		if le.OtherUID < 0 {
			le.OtherUID = o.OtherUID
		}
	}
	return le
}

// describeProcess says what pid is: a generation of this restarter (by its
// RESTART_EPOCH, when it is our descendant), or another process and its
// command line.
func describeProcess(pid int) string {
	for anc, n := pid, 0; anc > 1 && n < 64; n++ {
		ppid, _, ok := readStat(anc)
		if !ok {
			break
		}
		if ppid == os.Getpid() {
			if e := environValue(pid, "RESTART_EPOCH"); e != "" {
				return "epoch " + e + " of this restarter"
			}
			return "a child of this restarter"
		}
		anc = ppid
	}
	cmd, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	s := strings.Join(strings.Fields(strings.ReplaceAll(string(cmd), "\x00", " ")), " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	if s == "" {
		return "another process"
	}
	return "another process: " + s
}

// environValue returns the value of key in pid's environment, "" when
// absent or unreadable.
func environValue(pid int, key string) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// isLocalHostPort reports whether hostport names an address of this host,
// where its listener can be looked up in /proc (false for a name that does
// not resolve).
func isLocalHostPort(ctx context.Context, hostport string) bool {
	addrs, err := resolveHostPort(ctx, hostport)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if !isLocalAddr(a.Addr()) {
			return false
		}
	}
	return len(addrs) > 0
}
