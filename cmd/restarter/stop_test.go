package main

import "testing"

func TestParseTotalConnections(t *testing.T) {
	for body, want := range map[string]int64{
		"server.total_connections: 0\n":                                    0,
		"http.requests: 5\nserver.total_connections: 17\nserver.uptime: 3": 17,
		"server.total_connections:  3 \n":                                  3,
		"":                                                                 -1,
		"server.total_connections: many\n":                                 -1,
		"xserver.total_connections: 4\n":                                   -1,
	} {
		n, ok := parseTotalConnections(body)
		if want < 0 && ok || want >= 0 && (!ok || n != uint64(want)) {
			t.Errorf("parseTotalConnections(%q) = %d %v, want %d", body, n, ok, want)
		}
	}
}

// FuzzParseTotalConnections: the admin's answer is not ours; any text is
// parsed without panic, and a found value is one the text spells out.
func FuzzParseTotalConnections(f *testing.F) {
	f.Add("server.total_connections: 0\n")
	f.Add("a: 1\nserver.total_connections: 18446744073709551615\n")
	f.Add("server.total_connections: -1")
	f.Fuzz(func(t *testing.T, body string) {
		if _, ok := parseTotalConnections(body); ok && len(body) < len("server.total_connections: 0") {
			t.Fatalf("found a count in %q", body)
		}
	})
}
