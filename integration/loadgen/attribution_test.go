package loadgen

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestGenerationPID(t *testing.T) {
	h := http.Header{}
	if got := generationPID(h, []byte("epoch 3 pid 4711\n")); got != 4711 {
		t.Errorf("testproxy body: got %d, want 4711", got)
	}
	h.Set("X-Pid", "99")
	if got := generationPID(h, []byte("epoch 3 pid 4711\n")); got != 99 {
		t.Errorf("X-Pid header: got %d, want 99", got)
	}
	if got := generationPID(http.Header{}, []byte("hello pid")); got != 0 {
		t.Errorf("no pid: got %d, want 0", got)
	}
}

// Every failure is recorded with its class and time; every answering
// generation with the times it was seen.
func TestRunRecordsFailuresAndGenerations(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "epoch 0 pid 1234")
	}))
	defer srv.Close()
	res := run(t, Config{URL: srv.URL, KeepAlive: true})
	if res.OK == 0 || len(res.Generations) != 1 || res.Generations[0].PID != 1234 || res.Generations[0].OK != res.OK {
		t.Fatalf("got %v generations %+v, want one generation pid 1234 with every OK", res, res.Generations)
	}
	if g := res.Generations[0]; g.FirstSeen.IsZero() || g.LastSeen.Before(g.FirstSeen) {
		t.Errorf("first seen %v, last seen %v", g.FirstSeen, g.LastSeen)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res = run(t, Config{URL: "http://" + addr + "/"})
	if res.Refused == 0 || int64(len(res.Failures)) != res.Failed() {
		t.Fatalf("got %v with %d failure records, want every request refused and recorded", res, len(res.Failures))
	}
	for _, f := range res.Failures {
		if f.Class != "refused" || f.Start.IsZero() || f.End.Before(f.Start) || f.Reused {
			t.Fatalf("failure %+v: want class refused, start <= end, not reused", f)
		}
	}
}
