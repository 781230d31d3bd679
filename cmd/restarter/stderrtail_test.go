package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestEnvEpoch(t *testing.T) {
	if e, ok := envEpoch([]string{"A=1", "RESTART_EPOCH=7", "B=2"}); !ok || e != 7 {
		t.Fatalf("envEpoch = %d %v", e, ok)
	}
	if _, ok := envEpoch([]string{"RESTART_EPOCH=x"}); ok {
		t.Fatal("a bad RESTART_EPOCH parsed")
	}
	if _, ok := envEpoch(nil); ok {
		t.Fatal("no RESTART_EPOCH parsed")
	}
}

// The ring passes everything through unchanged and keeps the last lines.
func TestTailRing(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ring := &tailRing{done: make(chan struct{})}
	go ring.copy(r, &out)
	var want strings.Builder
	for i := 0; i < 2000; i++ {
		line := strings.Repeat("x", i%50) + "\n"
		want.WriteString(line)
		w.WriteString(line)
	}
	w.WriteString("fatal: the cause\n")
	want.WriteString("fatal: the cause\n")
	w.Close()
	<-ring.done
	if out.String() != want.String() {
		t.Fatalf("pass-through changed the bytes: %d vs %d", out.Len(), want.Len())
	}
	lines := ring.lastLines(tailLines)
	if len(lines) != tailLines || lines[len(lines)-1] != "fatal: the cause" {
		t.Fatalf("last lines: %q", lines)
	}
	if len(ring.buf) > tailBytes {
		t.Fatalf("ring holds %d bytes", len(ring.buf))
	}
}
