//go:build linux

package uds

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func frame(payload []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(len(payload))), payload...)
}

// chunks cuts wire into MaxDatagram datagrams, as Envoy sends them.
func chunks(wire []byte) [][]byte {
	var out [][]byte
	for len(wire) > MaxDatagram {
		out = append(out, wire[:MaxDatagram])
		wire = wire[MaxDatagram:]
	}
	return append(out, wire)
}

var frameCases = []struct {
	name    string
	dgrams  [][]byte
	max     int
	want    [][]byte // completed messages, in order
	wantErr bool
}{
	{"empty message", [][]byte{frame(nil)}, 0, [][]byte{{}}, false},
	{"small", [][]byte{frame([]byte("hello"))}, 0, [][]byte{[]byte("hello")}, false},
	{"exactly one datagram", chunks(frame(bytes.Repeat([]byte{1}, MaxDatagram-8))), 0, [][]byte{bytes.Repeat([]byte{1}, MaxDatagram-8)}, false},
	{"two datagrams", chunks(frame(bytes.Repeat([]byte{2}, MaxDatagram))), 0, [][]byte{bytes.Repeat([]byte{2}, MaxDatagram)}, false},
	{"many datagrams", chunks(frame(bytes.Repeat([]byte{3}, 100000))), 0, [][]byte{bytes.Repeat([]byte{3}, 100000)}, false},
	{"tiny datagram", [][]byte{{0, 0, 0}}, 0, nil, true},
	{"oversized claim", [][]byte{binary.BigEndian.AppendUint64(nil, 1<<62)}, 0, nil, true},
	{"over configured max", [][]byte{frame(make([]byte, 100))}, 99, nil, true},
	{"short first datagram", [][]byte{frame(make([]byte, 100))[:50]}, 0, nil, true},
	{"long datagram", [][]byte{append(frame([]byte("ab")), 'x')}, 0, nil, true},
	{"truncated then good", [][]byte{chunks(frame(make([]byte, 10000)))[0], frame([]byte("good"))}, 0, [][]byte{[]byte("good")}, true},
	{"misaligned continuation", [][]byte{chunks(frame(make([]byte, 10000)))[0], {1, 2, 3}}, 0, nil, true},
}

func TestDecoder(t *testing.T) {
	for _, tc := range frameCases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(tc.max)
			var got [][]byte
			var sawErr error
			for _, dg := range tc.dgrams {
				msg, ok, err := d.Feed(dg)
				if err != nil {
					if !errors.Is(err, ErrFrame) {
						t.Errorf("error %v does not wrap ErrFrame", err)
					}
					sawErr = err
				}
				if ok {
					got = append(got, append([]byte{}, msg...))
				}
			}
			if (sawErr != nil) != tc.wantErr {
				t.Errorf("error = %v, want error %v", sawErr, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d messages, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("message %d: %d bytes, want %d", i, len(got[i]), len(tc.want[i]))
				}
			}
			// After anything, a good message still decodes.
			msg, ok, err := d.Feed(frame([]byte("after")))
			if err != nil || !ok || string(msg) != "after" {
				t.Errorf("decoder not reusable: %q %v %v", msg, ok, err)
			}
		})
	}
}

// TestDecoderDoesNotTrustPrefix: a prefix claiming 60 MiB followed by one
// datagram must not allocate 60 MiB.
func TestDecoderDoesNotTrustPrefix(t *testing.T) {
	d := NewDecoder(0)
	first := make([]byte, MaxDatagram)
	binary.BigEndian.PutUint64(first, 60<<20)
	if _, ok, err := d.Feed(first); ok || err != nil {
		t.Fatalf("first datagram: ok %v err %v", ok, err)
	}
	if cap(d.buf) > 4*MaxDatagram {
		t.Errorf("buffer cap %d after one datagram of a 60 MiB claim", cap(d.buf))
	}
}

func FuzzDecoder(f *testing.F) {
	for _, tc := range frameCases {
		var all []byte
		for _, dg := range tc.dgrams {
			if len(dg) > 200 {
				dg = dg[:200]
			}
			all = append(all, byte(len(dg)>>8), byte(len(dg)))
			all = append(all, dg...)
		}
		f.Add(all)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(1 << 20)
		// in is a sequence of (2-byte length, datagram).
		for len(in) >= 2 {
			n := int(in[0])<<8 | int(in[1])
			in = in[2:]
			if n > len(in) {
				n = len(in)
			}
			msg, ok, _ := d.Feed(in[:n])
			if ok && len(msg) > d.Max {
				t.Fatalf("message of %d bytes over the %d limit", len(msg), d.Max)
			}
			if len(d.buf) > d.Max+headerLen {
				t.Fatalf("buffer of %d bytes over the limit", len(d.buf))
			}
			in = in[n:]
		}
	})
}

func TestSocketName(t *testing.T) {
	cases := []struct {
		path, role  string
		base, epoch uint32
		want        string
	}{
		{"@envoy_domain_socket", RoleParent, 0, 0, "@envoy_domain_socket_parent_0"},
		{"@envoy_domain_socket", RoleChild, 0, 1, "@envoy_domain_socket_child_1"},
		{"@envoy_domain_socket", RoleChild, 0, 4, "@envoy_domain_socket_child_1"},
		{"@envoy_domain_socket", RoleParent, 7, 5, "@envoy_domain_socket_parent_72"},
		{"/run/envoy/hr", RoleUDPChild, 1, 3, "/run/envoy/hr_udp_child_10"},
		{"/run/envoy/hr", RoleUDPParent, 1, 2, "/run/envoy/hr_udp_parent_12"},
	}
	for _, c := range cases {
		if got := SocketName(c.path, c.role, c.base, c.epoch); got != c.want {
			t.Errorf("SocketName(%q, %q, %d, %d) = %q, want %q", c.path, c.role, c.base, c.epoch, got, c.want)
		}
	}
}

func TestSockAddrPadding(t *testing.T) {
	a, err := sockAddr("@x_parent_0")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Name) != sunPathLen || a.Name[:11] != "@x_parent_0" || a.Name[11] != 0 {
		t.Errorf("abstract name not padded to %d bytes: %q", sunPathLen, a.Name)
	}
	f, err := sockAddr("/tmp/x_parent_0")
	if err != nil || f.Name != "/tmp/x_parent_0" {
		t.Errorf("filesystem name changed: %q %v", f.Name, err)
	}
	long := "@" + string(bytes.Repeat([]byte("a"), 120))
	if _, err := sockAddr(long); err == nil {
		t.Error("a 121-byte name was accepted")
	}
}
