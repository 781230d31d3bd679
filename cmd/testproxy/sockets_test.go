package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// listenInodes returns the inodes (sorted, each once) of the TCP sockets
// that process pid holds open and that listen on port, from /proc/<pid>/fd
// and /proc/net/tcp{,6}. A socket passed from one process to another keeps
// its inode: the same inodes in parent and child are the parent's sockets,
// handed over, not ones the child bound itself.
func listenInodes(t *testing.T, pid, port int) []string {
	t.Helper()
	listening := map[string]bool{} // inode -> listens on port
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// sl local_address rem_address st ... uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) < 10 || fs[3] != "0A" { // 0A: TCP_LISTEN
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			if p, err := strconv.ParseUint(fs[1][i+1:], 16, 16); err == nil && int(p) == port {
				listening[fs[9]] = true
			}
		}
		fh.Close()
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("fds of pid %d: %v", pid, err)
	}
	var out []string
	for _, e := range ents {
		link, _ := os.Readlink(dir + "/" + e.Name())
		ino, ok := strings.CutPrefix(link, "socket:[")
		ino = strings.TrimSuffix(ino, "]")
		if ok && listening[ino] && !slices.Contains(out, ino) {
			out = append(out, ino)
		}
	}
	slices.Sort(out)
	return out
}

// proxyInfo is /server_info's testproxy-only object (admin.go).
type proxyInfo struct {
	HotRestartParent string `json:"hot_restart_parent"`
	LogReopens       uint64 `json:"log_reopens"`
}

// getTestproxyInfo reads the state and the testproxy object of admin's /server_info.
func getTestproxyInfo(admin string) (state string, ti proxyInfo, err error) {
	resp, err := client.Get(admin + "/server_info")
	if err != nil {
		return "", ti, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", ti, fmt.Errorf("server_info: status %d", resp.StatusCode)
	}
	var si struct {
		State     string    `json:"state"`
		Testproxy proxyInfo `json:"testproxy"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&si); err != nil {
		return "", ti, fmt.Errorf("server_info: %w", err)
	}
	return si.State, si.Testproxy, nil
}

// waitParentLink waits until admin's /server_info reports want as hot_restart_parent.
func waitParentLink(t *testing.T, admin, want string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, func() error {
		_, ti, err := getTestproxyInfo(admin)
		if err != nil {
			return err
		}
		if ti.HotRestartParent != want {
			return fmt.Errorf("server_info testproxy.hot_restart_parent = %q, want %q", ti.HotRestartParent, want)
		}
		return nil
	})
}
