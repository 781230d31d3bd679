package main

import (
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	old := buildVersion
	defer func() { buildVersion = old }()
	buildVersion = ""
	if v := version(); !strings.HasPrefix(v, baseVersion) || v == "(devel)" {
		t.Errorf("version() without ldflags = %q, want %s-dev...", v, baseVersion)
	}
	buildVersion = "v1.2.3-4-gabc"
	if v := version(); v != "v1.2.3-4-gabc" {
		t.Errorf("version() with ldflags = %q", v)
	}
}
