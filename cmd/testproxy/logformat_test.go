package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogFormat(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(bad, []byte("fail: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	// A config that fails makes serve mode log one error and exit 1.
	if code := runWith([]string{"--log-format", "json", "-c", bad}, &out, &errb); code != exitFailure {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitFailure, errb.String())
	}
	line := strings.TrimSpace(errb.String())
	var ev map[string]any
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["msg"] != "invalid configuration" || ev["level"] != "error" {
		t.Fatalf("--log-format json: stderr %q is not one JSON event (%v)", line, err)
	}

	errb.Reset()
	if code := runWith([]string{"--log-format", "[%Y] %v"}, &out, &errb); code != exitUsage ||
		!strings.Contains(errb.String(), `--log-format "[%Y] %v": use console or json`) {
		t.Fatalf("Envoy pattern: exit %d, stderr %q", code, errb.String())
	}
}
