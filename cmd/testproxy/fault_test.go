package main

import (
	"io"
	"strings"
	"testing"
)

// The fault-injection flags of the fault matrix reject what they do not know.
func TestFaultFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // error substring, "" for none
	}{
		{[]string{"--fault-at", "after-stats", "--fault", "hang"}, ""},
		{[]string{"--fault-at", "after-drain"}, ""},
		{[]string{"--fault-at", "during-lunch"}, `--fault-at "during-lunch": use one of before-admin`},
		{[]string{"--fault-at", "after-admin", "--fault", "explode"}, `--fault "explode": use kill or hang`},
	} {
		_, err := parseFlags(c.args, io.Discard)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: got %v, want no error", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: got %v, want an error with %q", c.args, err, c.want)
		}
	}
}
