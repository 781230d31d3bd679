package supervisor

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// TestMain runs the test binary as a generation when SUPERVISOR_HELPER is
// set (the os/exec helper-process pattern).
func TestMain(m *testing.M) {
	if mode := os.Getenv("SUPERVISOR_HELPER"); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// helperMain is a stand-in proxy:
//
//	listen: listen on 127.0.0.1:0 and stay; close the listener once the file
//	  $DRAIN_FILE exists (a parent told to drain stops listening).
//	drain-and-fail: create $DRAIN_FILE (tell the parent to drain) and exit 4
//	  (a child that dies after drain_listeners), once per $MARK file
//	  unless $ALWAYS is set; otherwise act as listen.
func helperMain(mode string) int {
	if mode == "drain-and-fail" && os.Getenv("RESTART_EPOCH") != "0" {
		_, err := os.Stat(os.Getenv("MARK"))
		if os.Getenv("ALWAYS") != "" || err != nil {
			os.WriteFile(os.Getenv("MARK"), nil, 0o644)
			os.WriteFile(os.Getenv("DRAIN_FILE"), nil, 0o644)
			return 4
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	drain := os.Getenv("DRAIN_FILE")
	for {
		time.Sleep(20 * time.Millisecond)
		if _, err := os.Stat(drain); drain != "" && err == nil && os.Getenv("RESTART_EPOCH") == "0" {
			ln.Close()
			select {} // keeps running, no longer listening
		}
	}
}
