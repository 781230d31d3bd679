package main

import (
	"runtime/debug"
	"strings"
)

// baseVersion is the release this tree is, or leads up to.
const baseVersion = "0.1.0"

// buildVersion is set at link time (make build: -X main.buildVersion=$(git describe)).
var buildVersion string

// version is what --version prints: the link-time version; else the module
// version (go install ...@vX); else baseVersion-dev with the VCS revision
// the go command stamped, when it did.
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	bi, ok := debug.ReadBuildInfo()
	if ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	v := baseVersion + "-dev"
	if !ok {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += "+" + strings.TrimSpace(rev) + dirty
	}
	return v
}
