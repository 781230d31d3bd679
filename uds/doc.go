// Package uds speaks Envoy's hot-restart protocol: the HotRestartMessage
// requests and replies that one generation of a server (the child, epoch N)
// exchanges with the previous one (the parent, epoch N-1) over Unix datagram
// sockets, to take over its admin port, its listening sockets and its stats,
// then drain and terminate it.
//
// It follows Envoy's source/server/hot_restarting_{base,parent,child}.cc and
// hot_restart.proto (package envoy) on the wire:
//
//   - Sockets are SOCK_DGRAM, named <socket-path>_<role>_<base_id*10+epoch%3>
//     (SocketName). Every process binds child_N and parent_N and their UDP
//     twins udp_child_N and udp_parent_N, at every epoch (epoch 0 too). A
//     child at epoch N sends to parent_<(N-1)%3>.
//   - A message is an 8-byte big-endian length, then the protobuf bytes,
//     cut into datagrams of at most 4096 bytes. A pass_listen_socket reply
//     carries its one fd (SCM_RIGHTS) and fits one datagram; nothing else
//     carries control data.
//   - pass_listen_socket matches address, network_namespace (field 3) and
//     worker index, else fd -1. drain_listeners, terminate and
//     test_connection get no reply; an unknown request (or a reply sent to
//     the parent) gets didnt_recognize_your_last_message.
//   - A child's send that meets ECONNREFUSED (or ENOENT, for a filesystem
//     socket not yet bound) is retried, 10 times 1 s apart by default,
//     except test_connection (Child.TestConnection): Envoy's "allow
//     failure", where the first refusal is final.
//   - A parent forwards UDP packets it cannot route (QUIC) from udp_parent
//     to the child's udp_child (Parent.ForwardUDPPacket,
//     forwarded_udp_packet); the child delivers them by local address and
//     worker index (Child.ServeForwardedUDP, UDPListeners).
//
// Abstract addresses. Envoy builds a sockaddr_un, zeroes it, copies the name
// (with '@' turned into the leading NUL) and passes sizeof(sockaddr_un) as the
// address length to bind(2) and sendmsg(2) (createDomainSocketAddress and
// bindDomainSocket in hot_restarting_base.cc). For the abstract namespace the
// kernel takes the whole length as the name, so Envoy's socket is really
// "\0envoy_domain_socket_parent_0" followed by NULs up to 108 bytes of
// sun_path (ss -x shows it as "@envoy_domain_socket_parent_0@@@@..."). Go's
// net package, like most programs, uses the exact length, which names a
// different socket: the two would never meet. This package pads abstract
// names to the full sun_path the same way (the '@' plus name plus NULs make a
// 108-byte net.UnixAddr.Name, which Go passes through with length 110), so it
// talks to Envoy and to itself; TestEnvoyPaddedAbstractAddress checks it with
// a socket bound the way Envoy binds. Filesystem names end at the first NUL
// whatever the length, so they need nothing; they are created with
// Config.SocketMode (default 0600) set on the socket before bind(2) and
// nothing after, as Envoy does, so the file is the mode less the umask
// (0660 under umask 022 gives 0640), and a stale socket file is replaced,
// as Envoy does.
//
// Hardening beyond Envoy: every datagram's sender credentials
// (SCM_CREDENTIALS, SO_PASSCRED) pass Config.Peer (default: same uid or root)
// or the datagram is dropped, never answered, and logged at a bounded rate
// (the first, then one summary per 10 s with the count); messages are
// bounded by Config.MaxMessageSize and buffers grow only as bytes arrive;
// malformed input is logged and dropped, stray fds are closed; every wait of
// a Child is bounded by its context or Config.Timeout, where Envoy's child
// blocks forever on a dead parent.
//
// docs/envoy-fidelity.md lists each of these facts with the Envoy file and
// commit it was read in, the test that shows ours, and where we differ on
// purpose. The sockets are Linux only: elsewhere ListenParent and DialChild
// return ErrUnsupported, while the wire format builds.
//
// Usage, in the parent (epoch N-1):
//
//	reg := uds.NewListeners()
//	reg.Add(uds.AddressURL(ln.Addr()), 0, lnFile)
//	p, err := uds.ListenParent(uds.Config{Epoch: n - 1}, uds.ParentHandler{Listeners: reg, ...})
//	defer p.Close()
//
// and in the child (epoch N):
//
//	c, err := uds.DialChild(uds.Config{Epoch: n})
//	f, err := c.PassListenSocket(ctx, "tcp://127.0.0.1:8080", 0) // nil, nil: bind your own
//
// Store keeps stats with Envoy's hot-restart semantics (see Store). The
// parent answers with ParentHandler{StatsTo: store.ExportTo} and the child
// pulls with c.StatsInto(ctx, store): the reply is encoded and decoded
// straight from and into the stores, with no maps in between (a reply with
// Envoy's dynamic stat-name spans goes through the generic decoder).
package uds
