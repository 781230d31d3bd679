package main

import (
	"path/filepath"
	"strings"
)

// validatorDesc names a validator in errors and reload outcomes, short
// enough to repeat: the sh -c script or the command line, and when that is
// long (Envoy mode's default is the whole proxy command line) the program's
// base name with its last arguments. The full argv is logged once, before
// each validation.
func validatorDesc(argv []string) string {
	desc := strings.Join(argv, " ")
	if len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" {
		desc = argv[2]
	}
	const max = 80
	if len(desc) <= max || len(argv) == 0 {
		return desc
	}
	if len(argv) == 3 && argv[0] == "/bin/sh" {
		return desc[:max-3] + "..."
	}
	head := filepath.Base(argv[0])
	var tailArgs []string
	for i := len(argv) - 1; i > 0 && len(head)+len(strings.Join(tailArgs, " "))+len(argv[i])+6 <= max; i-- {
		tailArgs = append([]string{argv[i]}, tailArgs...)
	}
	return head + " ... " + strings.Join(tailArgs, " ")
}
