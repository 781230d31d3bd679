package integration

// sdBox: a real systemd booted as PID 1 of a throw-away systemd-nspawn
// container, for the tests in systemd_test.go. Nothing on the host changes
// except a few private cgroups (removed by Down) and /run/systemd/nspawn
// (nspawn's scratch directory, created if missing and left in place).
//
// The container's root is a fresh directory under the test's temp dir with a
// minimal /etc (no unit of the host is ever started: the boot target pulls in
// sysinit.target only), and /usr is the host's, read-only:
//   - flavor "252": the host's own /usr (Debian 12 ships systemd 252);
//   - flavor "254": the host's /usr with systemd 254 from bookworm-backports
//     overlaid on it, read-only. The .debs are fetched once with apt-get
//     download into a private apt state (the host's apt is not touched) and
//     unpacked with dpkg-deb -x into $SYSTEMD_BOX_CACHE (default: the user
//     cache dir, restarter-test/systemd-254).
//
// The container has its own network namespace (loopback only), so the units
// may use fixed ports. Commands run inside with nsenter into all of the
// container's namespaces.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// errNoBox says why a box cannot run here; the tests skip with it.
type errNoBox struct{ why string }

func (e errNoBox) Error() string { return e.why }

type sdBox struct {
	t       testing.TB
	flavor  string
	dir     string // state: root/, console.log, nspawn.pid
	root    string
	cgroups []string
	unified bool // a cgroup2 hierarchy is there: nspawn gives the container cgroup v2
	cmd     *exec.Cmd
	nspawn  int // host pid of systemd-nspawn
	leader  int // host pid of the container's PID 1
	BootDur time.Duration
	Version string // `systemctl --version` first line
}

// boxPrereqs returns an errNoBox when nspawn cannot run on this host.
func boxPrereqs() error {
	if os.Geteuid() != 0 {
		return errNoBox{"systemd-nspawn needs root; run the systemd tests as root"}
	}
	for _, c := range []string{"systemd-nspawn", "nsenter", "unshare", "timeout"} {
		if _, err := exec.LookPath(c); err != nil {
			return errNoBox{c + " not found (Debian: apt-get install systemd-container util-linux)"}
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		return errNoBox{"no /sys/fs/cgroup"}
	}
	return nil
}

// systemd254Tree returns a directory holding usr/ of systemd 254 from
// bookworm-backports, fetching it on first use.
func systemd254Tree() (string, error) {
	cache := os.Getenv("SYSTEMD_BOX_CACHE")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		cache = filepath.Join(base, "restarter-test", "systemd-254")
	}
	if _, err := os.Stat(filepath.Join(cache, "usr/lib/systemd/systemd")); err == nil {
		return cache, nil
	}
	for _, c := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(c); err != nil {
			return "", errNoBox{c + " not found: cannot fetch systemd 254"}
		}
	}
	mirror, err := debianMirror()
	if err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(filepath.Dir(cache), ".fetch-")
	if err != nil {
		if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
			return "", err
		}
		if work, err = os.MkdirTemp(filepath.Dir(cache), ".fetch-"); err != nil {
			return "", err
		}
	}
	defer os.RemoveAll(work)
	for _, d := range []string{"lists/partial", "cache/archives/partial", "debs", "x"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return "", err
		}
	}
	src := filepath.Join(work, "backports.sources")
	if err := os.WriteFile(src, []byte("Types: deb\nURIs: "+mirror+"\nSuites: bookworm-backports\nComponents: main\n"+
		"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"), 0o644); err != nil {
		return "", err
	}
	apt := []string{"-q", "-o", "Dir::Etc::sourcelist=" + src, "-o", "Dir::Etc::sourceparts=/nonexistent",
		"-o", "Dir::State::Lists=" + filepath.Join(work, "lists"), "-o", "Dir::Cache=" + filepath.Join(work, "cache"),
		"-o", "APT::Sandbox::User=root"}
	// Bounded: a host without network must skip, not hang CI.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "apt-get", append(apt, "update")...).CombinedOutput(); err != nil {
		return "", errNoBox{fmt.Sprintf("apt-get update for bookworm-backports failed (%v): %s", err, lastLines(string(out), 5))}
	}
	dl := exec.CommandContext(ctx, "apt-get", append(apt, "download", "systemd/bookworm-backports",
		"libsystemd-shared/bookworm-backports", "libsystemd0/bookworm-backports")...)
	dl.Dir = filepath.Join(work, "debs")
	if out, err := dl.CombinedOutput(); err != nil {
		return "", errNoBox{fmt.Sprintf("apt-get download of systemd 254 failed (%v): %s", err, lastLines(string(out), 5))}
	}
	debs, _ := filepath.Glob(filepath.Join(work, "debs", "*.deb"))
	x := filepath.Join(work, "x")
	for _, d := range debs {
		if out, err := exec.Command("dpkg-deb", "-x", d, x).CombinedOutput(); err != nil {
			return "", fmt.Errorf("dpkg-deb -x %s: %v: %s", d, err, out)
		}
	}
	// These debs are not usr-merged: move /bin, /lib... under usr/.
	for _, top := range []string{"bin", "sbin", "lib", "lib64"} {
		p := filepath.Join(x, top)
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			if err := os.MkdirAll(filepath.Join(x, "usr", top), 0o755); err != nil {
				return "", err
			}
			if out, err := exec.Command("cp", "-a", p+"/.", filepath.Join(x, "usr", top)+"/").CombinedOutput(); err != nil {
				return "", fmt.Errorf("cp: %v: %s", err, out)
			}
			os.RemoveAll(p)
		}
	}
	if _, err := os.Stat(filepath.Join(x, "usr/lib/systemd/systemd")); err != nil {
		return "", errors.New("the systemd 254 debs hold no usr/lib/systemd/systemd")
	}
	os.RemoveAll(cache)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(x, "usr"), filepath.Join(cache, "usr")); err != nil {
		return "", err
	}
	return cache, nil
}

// debianMirror is the first Debian archive the host's apt uses.
func debianMirror() (string, error) {
	if m := os.Getenv("SYSTEMD_BOX_MIRROR"); m != "" {
		return m, nil
	}
	for _, f := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			switch {
			case len(fs) >= 2 && fs[0] == "URIs:" && !strings.Contains(fs[1], "security"):
				return fs[1], nil
			case len(fs) >= 3 && fs[0] == "deb" && !strings.Contains(fs[1], "security"):
				return fs[1], nil
			}
		}
	}
	return "", errNoBox{"no Debian mirror in the host's apt sources (set SYSTEMD_BOX_MIRROR)"}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// masked: early-boot units that only cost time in a container (nspawn
// already makes what they would touch read-only).
var boxMasked = []string{"systemd-sysctl.service", "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
	"systemd-modules-load.service", "kmod-static-nodes.service", "ldconfig.service", "systemd-random-seed.service",
	"systemd-journal-catalog-update.service", "systemd-update-done.service", "systemd-hwdb-update.service",
	"systemd-firstboot.service", "systemd-machine-id-commit.service", "systemd-pstore.service",
	"systemd-repart.service", "systemd-pcrphase.service", "systemd-pcrphase-sysinit.service",
	"systemd-pcrmachine.service", "systemd-update-utmp.service", "dev-hugepages.mount", "sys-kernel-config.mount",
	"sys-kernel-debug.mount", "sys-kernel-tracing.mount", "sys-fs-fuse-connections.mount"}

// bootBox boots a box of flavor ("252" or "254") with binDir bind-mounted
// read-only at /opt/restarter. An errNoBox error means: skip.
func bootBox(t testing.TB, flavor, binDir string) (*sdBox, error) {
	t.Helper()
	if err := boxPrereqs(); err != nil {
		return nil, err
	}
	var usr []string
	switch flavor {
	case "252":
		usr = []string{"--bind-ro=/usr"}
	case "254":
		tree, err := systemd254Tree()
		if err != nil {
			return nil, err
		}
		usr = []string{"--overlay-ro=/usr:" + filepath.Join(tree, "usr") + ":/usr"}
	default:
		return nil, fmt.Errorf("flavor %q", flavor)
	}
	dir, err := os.MkdirTemp("", "rt-sdbox-")
	if err != nil {
		return nil, err
	}
	name := "rtbox-" + filepath.Base(dir)[len("rt-sdbox-"):]
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, name)
	b := &sdBox{t: t, flavor: flavor, dir: dir, root: filepath.Join(dir, "root")}
	ok := false
	defer func() {
		if !ok {
			b.Down()
		}
	}()
	if err := b.makeRoot(); err != nil {
		return nil, err
	}
	if err := b.makeCgroups(name); err != nil {
		return nil, errNoBox{"cannot create a cgroup for the container: " + err.Error()}
	}
	if err := os.MkdirAll("/run/systemd/nspawn", 0o755); err != nil {
		return nil, err
	}

	nspawn := append([]string{"systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--machine=" + name,
		"--directory=" + b.root}, usr...)
	nspawn = append(nspawn, "--console=read-only", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
		"--private-network", "--bind-ro="+binDir+":/opt/restarter",
		"--boot", "--", "--unit=rtbox.target", "--log-level=info")
	var sh strings.Builder
	sh.WriteString("set -e\n")
	for _, cg := range b.cgroups {
		fmt.Fprintf(&sh, "echo $$ > %s/cgroup.procs\n", cg)
	}
	fmt.Fprintf(&sh, "echo $$ > %s/nspawn.pid\n", dir)
	// nspawn mounts a tmpfs of its own on /run/systemd/nspawn in a private
	// mount namespace, so the host's /run is left alone.
	sh.WriteString(`exec unshare --mount --propagation private -- /bin/sh -c 'mount -t tmpfs -o mode=0755,size=4m rtbox /run/systemd/nspawn && exec "$@"' sh`)
	for _, a := range nspawn {
		sh.WriteString(" '" + a + "'")
	}
	console, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		return nil, err
	}
	defer console.Close()
	// timeout: a box outlives a killed test binary by at most 10 minutes.
	b.cmd = exec.Command("timeout", "--kill-after=5", "600", "/bin/sh", "-c", sh.String())
	b.cmd.Stdout, b.cmd.Stderr = console, console
	b.cmd.Env = os.Environ()
	if b.unified {
		b.cmd.Env = append(b.cmd.Env, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1")
	}
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	start := time.Now()
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { b.cmd.Wait(); close(done) }()
	end := start.Add(60 * time.Second)
	state := ""
	for time.Now().Before(end) {
		select {
		case <-done:
			return nil, errNoBox{"systemd-nspawn exited during boot: " + lastLines(b.Console(), 8)}
		default:
		}
		if b.nspawn == 0 {
			if p, err := os.ReadFile(filepath.Join(dir, "nspawn.pid")); err == nil {
				b.nspawn, _ = strconv.Atoi(strings.TrimSpace(string(p)))
			}
		}
		if b.nspawn != 0 && b.leader == 0 {
			b.leader = containerInit(b.nspawn)
		}
		if b.leader != 0 {
			out, _ := b.Exec("systemctl", "is-system-running")
			state = strings.TrimSpace(out)
			if state == "running" || state == "degraded" {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if state != "running" && state != "degraded" {
		return nil, fmt.Errorf("%s box not booted after 60s (state %q): %s", flavor, state, lastLines(b.Console(), 20))
	}
	b.BootDur = time.Since(start)
	v, _ := b.Exec("systemctl", "--version")
	b.Version = strings.SplitN(v, "\n", 2)[0]
	ok = true
	return b, nil
}

func (b *sdBox) makeRoot() error {
	r := b.root
	for _, d := range []string{"usr", "etc/systemd/system", "etc/systemd/system.conf.d", "var/lib", "var/log",
		"var/tmp", "tmp", "run", "proc", "sys", "dev", "root", "opt/restarter"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			return err
		}
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := os.Symlink("usr/"+l, filepath.Join(r, l)); err != nil {
			return err
		}
	}
	osr, err := os.ReadFile("/usr/lib/os-release")
	if err != nil {
		return err
	}
	id, err := os.ReadFile("/proc/sys/kernel/random/uuid")
	if err != nil {
		return err
	}
	files := map[string]string{
		"etc/os-release": string(osr),
		// A machine id: not a first boot, so no presets are applied.
		"etc/machine-id":    strings.ReplaceAll(strings.TrimSpace(string(id)), "-", "") + "\n",
		"etc/passwd":        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"etc/group":         "root:x:0:\nnogroup:x:65534:\n",
		"etc/shadow":        "root:*::0:::::\nnobody:*::0:::::\n",
		"etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
		"etc/systemd/system/rtbox.target": "[Unit]\nDescription=restarter test box: sysinit only\n" +
			"Wants=sysinit.target\nAfter=sysinit.target\nAllowIsolate=yes\n",
		"etc/systemd/system.conf.d/rtbox.conf": "[Manager]\nDefaultTimeoutStartSec=30s\nDefaultTimeoutStopSec=15s\n" +
			"DefaultStandardOutput=journal\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(r, p), []byte(c), 0o644); err != nil {
			return err
		}
	}
	for _, m := range boxMasked {
		if err := os.Symlink("/dev/null", filepath.Join(r, "etc/systemd/system", m)); err != nil {
			return err
		}
	}
	return nil
}

// makeCgroups creates the cgroups the container runs in (nspawn
// --keep-unit wants one it may manage): on cgroup v2 one below ours; on v1
// one in the name=systemd hierarchy, plus one in the unified hierarchy if
// the host mounts it.
func (b *sdBox) makeCgroups(name string) error {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return err
	}
	rel := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 {
			rel[f[1]] = strings.TrimSuffix(f[2], "/") // by controller list; "" is cgroup v2
		}
	}
	var fsType syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &fsType); err != nil {
		return err
	}
	const cgroup2Magic = 0x63677270
	var paths []string
	if fsType.Type == cgroup2Magic {
		paths = append(paths, "/sys/fs/cgroup"+rel[""]+"/"+name)
		b.unified = true
	} else {
		var u syscall.Statfs_t
		if syscall.Statfs("/sys/fs/cgroup/unified", &u) == nil && u.Type == cgroup2Magic {
			paths = append(paths, "/sys/fs/cgroup/unified"+rel[""]+"/"+name)
			b.unified = true
		}
		if _, err := os.Stat("/sys/fs/cgroup/systemd"); err != nil {
			return errors.New("no cgroup2 and no name=systemd hierarchy")
		}
		paths = append(paths, "/sys/fs/cgroup/systemd"+rel["name=systemd"]+"/"+name)
	}
	for _, p := range paths {
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
		b.cgroups = append(b.cgroups, p)
	}
	return nil
}

// containerInit is the host pid of the child of nspawn that is PID 1 in its
// own pid namespace.
func containerInit(nspawn int) int {
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawn, nspawn))
	for _, k := range strings.Fields(string(kids)) {
		pid, _ := strconv.Atoi(k)
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) == 3 && fs[0] == "NSpid:" && fs[2] == "1" {
				f.Close()
				return pid
			}
		}
		f.Close()
	}
	return 0
}

// Exec runs argv inside the box and returns its combined output.
func (b *sdBox) Exec(argv ...string) (string, error) {
	args := append([]string{"--target", strconv.Itoa(b.leader), "--all", "--", "/usr/bin/env", "-i",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8",
		"SYSTEMD_PAGER=cat", "SYSTEMD_COLORS=0", "SYSTEMD_URLIFY=0"}, argv...)
	out, err := exec.Command("nsenter", args...).CombinedOutput()
	return string(out), err
}

// Systemctl runs systemctl inside the box; code is its exit status.
func (b *sdBox) Systemctl(args ...string) (out string, code int) {
	out, err := b.Exec(append([]string{"systemctl"}, args...)...)
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	case err != nil:
		return out + err.Error(), -1
	}
	return out, 0
}

// Show is one property of unit.
func (b *sdBox) Show(unit, prop string) string {
	out, _ := b.Systemctl("show", "-p", prop, "--value", unit)
	return strings.TrimSpace(out)
}

// WriteFile writes a file into the box's root (path is inside the box).
func (b *sdBox) WriteFile(path, content string) {
	b.t.Helper()
	if err := os.WriteFile(filepath.Join(b.root, path), []byte(content), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// Install writes a unit file and reloads the manager.
func (b *sdBox) Install(unit, content string) {
	b.t.Helper()
	b.WriteFile("etc/systemd/system/"+unit, content)
	if out, code := b.Systemctl("daemon-reload"); code != 0 {
		b.t.Fatalf("daemon-reload: %d %s", code, out)
	}
}

// Journal is the box's journal for unit (all of it when unit is "").
func (b *sdBox) Journal(unit string) string {
	args := []string{"journalctl", "--no-pager", "-o", "short-monotonic"}
	if unit != "" {
		args = append(args, "-u", unit)
	}
	out, _ := b.Exec(args...)
	return out
}

// Console is what the container printed.
func (b *sdBox) Console() string {
	c, _ := os.ReadFile(filepath.Join(b.dir, "console.log"))
	return string(c)
}

// Down halts the container (nspawn's SIGTERM is a clean poweroff), kills
// what is left and removes the cgroups and the root directory. Idempotent.
func (b *sdBox) Down() {
	if b.cmd != nil && b.cmd.Process != nil && b.nspawn != 0 {
		alive := func() bool { return syscall.Kill(b.nspawn, 0) == nil && procComm(b.nspawn) == "systemd-nspawn" }
		waitGone := func(d time.Duration) bool {
			for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				if !alive() {
					return true
				}
			}
			return !alive()
		}
		if alive() {
			_ = syscall.Kill(b.nspawn, syscall.SIGTERM)
			if !waitGone(20*time.Second) && alive() {
				if b.leader != 0 {
					_ = syscall.Kill(b.leader, syscall.SIGKILL) // the whole pid namespace goes with it
				}
				_ = syscall.Kill(b.nspawn, syscall.SIGKILL)
				waitGone(5 * time.Second)
			}
		}
	}
	for i := len(b.cgroups) - 1; i >= 0; i-- {
		removeCgroup(b.cgroups[i])
	}
	b.cgroups = nil
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

func procComm(pid int) string {
	c, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(c))
}

// removeCgroup kills what is left in cg (cgroup v2: cgroup.kill) and removes
// it and its children, deepest first.
func removeCgroup(cg string) {
	if _, err := os.Stat(filepath.Join(cg, "cgroup.kill")); err == nil {
		_ = os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0o644)
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		var dirs []string
		filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(dirs[i])
		}
		if _, err := os.Stat(cg); err != nil {
			return
		}
	}
}
