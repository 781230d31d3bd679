//go:build linux

package uds

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hotrestart/restarter/uds/hotrestartpb"
	"google.golang.org/protobuf/proto"
)

// TestProtocDecodesOurBytes proves the encoding independently of our Go code:
// Debian's protoc decodes what we marshal using only the .proto.
func TestProtocDecodesOurBytes(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		t.Skip("protoc not on PATH (Debian package protobuf-compiler): cannot cross-check the encoding")
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "hotrestartpb")
	cases := []struct {
		name string
		msg  *pbMsg
		want []string
	}{
		{"pass request", &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Request_{Request: &pbRequest{
			Request: &pbRequest_PassListenSocket{PassListenSocket: &hotrestartpb.HotRestartMessage_Request_PassListenSocket{Address: "tcp://[::1]:80", WorkerIndex: 3, NetworkNamespace: "/var/run/netns/blue"}},
		}}}, []string{"request {", "pass_listen_socket {", `address: "tcp://[::1]:80"`, "worker_index: 3", `network_namespace: "/var/run/netns/blue"`}},
		{"pass reply", &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Reply_{Reply: &pbReply{
			Reply: &pbReply_PassListenSocket{PassListenSocket: &hotrestartpb.HotRestartMessage_Reply_PassListenSocket{Fd: -1}},
		}}}, []string{"reply {", "pass_listen_socket {", "fd: -1"}},
		{"shutdown admin reply", &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Reply_{Reply: &pbReply{
			Reply: &pbReply_ShutdownAdmin{ShutdownAdmin: &hotrestartpb.HotRestartMessage_Reply_ShutdownAdmin{OriginalStartTimeUnixSeconds: 1700000000, EnableReusePortDefault: true}},
		}}}, []string{"shutdown_admin {", "original_start_time_unix_seconds: 1700000000", "enable_reuse_port_default: true"}},
		{"stats reply", &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Reply_{Reply: &pbReply{
			Reply: &pbReply_Stats{Stats: &hotrestartpb.HotRestartMessage_Reply_Stats{
				MemoryAllocated: 7, NumConnections: 2,
				CounterDeltas: map[string]uint64{"http.requests": 42},
				Gauges:        map[string]uint64{"server.hot_restart_generation": 1},
			}},
		}}}, []string{"stats {", "memory_allocated: 7", "num_connections: 2", "counter_deltas {", `key: "http.requests"`, "value: 42", "gauges {", `key: "server.hot_restart_generation"`}},
		{"terminate", &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Request_{Request: &pbRequest{
			Request: &pbRequest_Terminate{Terminate: &hotrestartpb.HotRestartMessage_Request_Terminate{}},
		}}}, []string{"request {", "terminate {"}},
		{"didnt recognize", notRecognized(), []string{"didnt_recognize_your_last_message: true"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire, err := appendMessage(nil, tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			// Our framing: the prefix is the big-endian protobuf length.
			raw, ok, err := NewDecoder(0).Feed(wire)
			if err != nil || !ok {
				t.Fatalf("decode own frame: %v %v", ok, err)
			}
			pb, _ := proto.Marshal(tc.msg)
			if !bytes.Equal(raw, pb) {
				t.Fatalf("framed payload differs from proto.Marshal")
			}
			cmd := exec.Command(protoc, "--proto_path="+dir, "--decode=envoy.HotRestartMessage", "hot_restart.proto")
			cmd.Stdin = bytes.NewReader(raw)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("protoc --decode: %v: %s", err, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("protoc output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
