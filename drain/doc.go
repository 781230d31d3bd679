// Package drain decides when a draining server asks its connections to close,
// following Envoy's drain manager (--drain-time-s, --drain-strategy).
//
// A Manager is idle until Start. From then on DrainClose reports whether the
// connection handling the current request should be closed: with the
// Immediate strategy always, with the Gradual strategy with probability
// elapsed/drain-time, and always once the drain time is over. Done is closed
// at the deadline (Start plus the drain time).
//
// HTTPHandler applies this to net/http: while draining, HTTP/1 responses get
// "Connection: close" whenever DrainClose says so. ShutdownHTTP waits for the
// deadline and then calls http.Server.Shutdown. For a server given to
// TrackHTTP it first closes the kept-alive connections itself, each only
// when no request can be in flight on it: a busy one closes after a
// response that says "Connection: close", an idle one once it has been idle
// for Config.IdleCloseAfter (default the drain time) with nothing to read
// (Shutdown alone closes idle connections at once, racing a client that is
// sending on one).
//
//	m, err := drain.New(drain.Config{DrainTime: 600 * time.Second, Strategy: drain.Gradual})
//	srv := &http.Server{Handler: m.HTTPHandler(mux)}
//	m.TrackHTTP(srv)
//	// when told to drain:
//	m.Start()
//	err = m.ShutdownHTTP(ctx, srv)
package drain
