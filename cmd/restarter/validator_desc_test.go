package main

import (
	"strings"
	"testing"
)

func TestValidatorDesc(t *testing.T) {
	long := []string{"/opt/envoy/bin/envoy", "--config-path", "/etc/envoy/" + strings.Repeat("x", 200) + ".yaml",
		"--log-level", "info", "--mode", "validate"}
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"/bin/sh", "-c", "envoy --mode validate -c /e.yaml"}, "envoy --mode validate -c /e.yaml"},
		{[]string{"/usr/bin/check", "a"}, "/usr/bin/check a"},
		{long, "envoy ... --log-level info --mode validate"},
		{[]string{"/bin/sh", "-c", strings.Repeat("y", 100)}, strings.Repeat("y", 77) + "..."},
	} {
		if got := validatorDesc(c.argv); got != c.want {
			t.Errorf("validatorDesc(%.40q) = %q, want %q", c.argv, got, c.want)
		}
		if got := validatorDesc(c.argv); len(got) > 80 {
			t.Errorf("validatorDesc: %d bytes", len(got))
		}
	}
}
