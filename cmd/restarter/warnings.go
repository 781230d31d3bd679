package main

import (
	"path/filepath"
	"strings"

	"go.uber.org/zap"
)

// startupWarnings logs configurations that work but rarely mean what was
// intended. Envoy mode is not switched on by guessing: a proxy that is not
// Envoy would be handed flags it does not know.
func startupWarnings(cfg Config, log *zap.Logger) {
	if cfg.ReadyEnvoyAdmin != "" && !cfg.Envoy && !cfg.Script && len(cfg.Argv) > 0 && !mentionsEpoch(cfg.Argv) {
		log.Warn("--ready-envoy-admin without --envoy: the restarter does not append --restart-epoch, --base-id, "+
			"--drain-time-s and --parent-shutdown-time-s to the command, so every epoch after 0 starts as epoch 0 "+
			"and fails to hot-restart; add --envoy if the command is Envoy under another name, or pass those "+
			"flags yourself with {{epoch}} and {{base_id}}",
			zap.String("command", filepath.Base(cfg.Argv[0])))
	}
}

func mentionsEpoch(argv []string) bool {
	for _, a := range argv {
		if strings.Contains(a, "{{epoch}}") {
			return true
		}
	}
	return false
}
