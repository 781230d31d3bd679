// Package control is the restarter's control channel: a Unix stream socket
// per instance in the runtime dir, and the `restarter status|reload|stop`
// command line that talks to it.
//
// The socket is `<runtime-dir>/<instance>.ctl`, where instance is the
// --name or `base-<id>` (InstanceName). It is created mode 0600 (fchmod
// before bind, so it is never wider), and every connection's peer
// credentials (SO_PEERCRED, unix(7)) must show the server's uid or root;
// the client checks the server's the same way before it believes an answer.
// A connection has 2 s to send each request; over 16 connections the oldest
// idle one is closed, and when all 16 run requests a newcomer is refused with
// "retry":true, which the CLI retries.
//
// Protocol: newline-delimited JSON, one request per line, one response per
// request, at most MaxRequestSize bytes per request. A request is exactly
// {"op":NAME}: the key is case-sensitive, other keys are refused. The
// commands are one table (commands.go) that the server, the CLI and its help
// read.
//
//	-> {"op":"status"}
//	<- {"ok":true,"status":{"name":"edge","pid":41,"generations":[...]}}
//	-> {"op":"reload"}
//	<- {"ok":true,"reload":{"ok":false,"epoch":4,"reason":"exited 1 before ready"}}
//	-> {"op":"bogus"}
//	<- {"ok":false,"error":"unknown op \"bogus\" (want status, reload or stop)"}
//
// Server side:
//
//	srv, err := control.NewServer(control.SocketPath(dir, control.InstanceName(name, baseID)), handler, log)
//	defer srv.Close()
//
// Client side: Find, then Dial, or RunCLI for the whole command line.
package control
