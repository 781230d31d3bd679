package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// listenInodes are the sockets pid holds listening on port
// (testutil.ListenInodes), failing t when pid's fds cannot be read.
func listenInodes(t *testing.T, pid, port int) []uint64 {
	t.Helper()
	ins, err := testutil.ListenInodes(pid, port)
	if err != nil {
		t.Fatal(err)
	}
	return ins
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
