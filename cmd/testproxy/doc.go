// Command testproxy is an Envoy-shaped HTTP server built only on this
// repository's hot-restart libraries (uds, fdpass, drain): the demo the README
// runs and the workhorse of the end-to-end tests. It takes Envoy's hot-restart
// flags and follows Envoy's hot-restart lifecycle.
//
// Flags (Envoy's): --restart-epoch, --base-id, --use-dynamic-base-id,
// --base-id-path, --drain-time-s, --drain-strategy gradual|immediate,
// --parent-shutdown-time-s, --socket-path (@envoy_domain_socket),
// --socket-mode (600, octal), --concurrency, --mode validate,
// --hot-restart-version, --skip-hot-restart-on-no-parent,
// --skip-hot-restart-parent-stats, --admin-address-path.
// Its own: --listen ADDR (repeatable; default 127.0.0.1:10000), --reuse-port
// (one socket per worker), --admin-address (127.0.0.1:9901), --config FILE
// ("body: TEXT" appended to / responses; "fail: true" makes validation and
// start fail), --stats-flush-interval (5s), --hot-restart-retry-delay (1s;
// a child tries 10 times that far apart to reach a parent socket), and for
// fault tests --fail-start (exit 1 after taking the parent's sockets, before
// going live; env TESTPROXY_FAIL_START=1) and --start-delay D (stay
// INITIALIZING that long; env TESTPROXY_START_DELAY), --fault-at POINT
// with --fault kill|hang (SIGKILL or SIGSTOP itself at that point of the
// handoff, epoch > 0) and --fault-once FILE (only while FILE does not exist,
// so a restart of the same epoch goes through). --udp-listen ADDR
// (repeatable) is a UDP echo listener that plays a QUIC listener across a hot
// restart ("epoch N pid P[ forwarded]: payload"). --shared-memory (env
// TESTPROXY_SHARED_MEMORY=1) models Envoy's shared-memory INITIALIZING guard
// with a file in --shm-dir (default /dev/shm; see internal/shmguard).
// TESTPROXY_HOT_RESTART_VERSION makes it report another hot restart version.
// Bad flags exit 2 with a message naming the value.
//
// Listeners: "/" answers "epoch N pid P"; "/slow?ms=N" answers after N ms.
// Both count in the counter http.requests. Admin: /ready (200 LIVE, else 503
// and the state), /server_info (Envoy's JSON: state, command_line_options with
// restart_epoch, base_id, drain_time, ...; plus a "testproxy" object Envoy's
// lacks: hot_restart_parent none|connected|terminated|gone, and log_reopens,
// the SIGUSR1s handled), /stats (name: value lines, or ?format=json),
// /hot_restart_version, POST /quitquitquit.
//
// Lifecycle. Epoch 0 binds its listeners and admin, then serves its child
// socket (uds.ListenParent). Epoch N > 0 dials its parent (uds.DialChild),
// takes over admin (the parent closes its admin listener, and terminates its
// own parent if one is left: at most three generations), asks for every
// listen socket by address and worker (binding its own when the parent has
// none), pulls stats, goes LIVE, tells the parent to drain, pulls stats at
// every flush, and after --parent-shutdown-time-s pulls them a last time and
// terminates the parent. Like Envoy, every epoch binds child_N, parent_N and
// their udp_ twins for its whole life, and --skip-hot-restart-on-no-parent
// probes with test_connection and starts as epoch 0 at the first refusal.
// A draining parent closes its copies of the listen
// sockets (the child accepts on the same sockets, so nothing queued is lost),
// asks HTTP/1 clients to close per the drain strategy, shuts its HTTP server
// down at the end of the drain time, and exits 0 when terminated; its UDP
// sockets it keeps reading, forwarding every datagram to the child, which
// reads them itself only once the parent is gone. SIGTERM, SIGINT and
// /quitquitquit: like Envoy's shutdown(), first terminate the hot-restart
// parent if there is one (even while INITIALIZING), then exit 0 gracefully;
// SIGUSR1: logs "reopening logs" and counts it in log_reopens. docs/envoy-fidelity.md has the details.
//
// Two generations by hand:
//
//	testproxy --restart-epoch 0 --drain-time-s 2 --parent-shutdown-time-s 4 &
//	curl localhost:10000/
//	testproxy --restart-epoch 1 --drain-time-s 2 --parent-shutdown-time-s 4 &
//	curl localhost:9901/server_info; curl localhost:9901/stats
package main
