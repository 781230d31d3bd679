//go:build linux

package uds

import (
	"context"
	"net"
	"testing"
)

// TestListenSocketNetworkNamespace: the parent passes a socket only when the
// request's address, network namespace and worker all match (Envoy's field 3
// of PassListenSocket, PR #43653); otherwise fd -1.
func TestListenSocketNetworkNamespace(t *testing.T) {
	lnOwn, fOwn := tcpListener(t)
	lnBlue, fBlue := tcpListener(t)
	reg := NewListeners()
	defer reg.Close()
	own := AddressURL(lnOwn.Addr())
	blue := AddressURL(lnBlue.Addr())
	reg.Add(own, 0, fOwn)
	reg.AddSocket(ListenSocket{Address: blue, NetworkNamespace: "/var/run/netns/blue", Worker: 0}, fBlue)
	_, c, _ := startPair(t, ParentHandler{Listeners: reg})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		k    ListenSocket
		want net.Addr // nil: fd -1
	}{
		{"own namespace", ListenSocket{Address: own}, lnOwn.Addr()},
		{"own address asked in another namespace", ListenSocket{Address: own, NetworkNamespace: "/var/run/netns/blue"}, nil},
		{"namespaced socket", ListenSocket{Address: blue, NetworkNamespace: "/var/run/netns/blue"}, lnBlue.Addr()},
		{"namespaced socket asked without namespace", ListenSocket{Address: blue}, nil},
		{"namespaced socket asked in the wrong one", ListenSocket{Address: blue, NetworkNamespace: "/var/run/netns/red"}, nil},
		{"namespaced socket, other worker", ListenSocket{Address: blue, NetworkNamespace: "/var/run/netns/blue", Worker: 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := c.RequestListenSocket(ctx, tc.k)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				if f != nil {
					f.Close()
					t.Fatalf("got a socket for %+v, want fd -1", tc.k)
				}
				return
			}
			if f == nil {
				t.Fatalf("got fd -1 for %+v, want the socket on %s", tc.k, tc.want)
			}
			ln, err := net.FileListener(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if ln.Addr().String() != tc.want.String() {
				t.Errorf("passed listener on %s, want %s", ln.Addr(), tc.want)
			}
		})
	}
}
