package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	startTimeout = 30 // seconds each hot-restart request may take
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	return runWith(args, os.Stdout, os.Stderr)
}

func runWith(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, errHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "testproxy: %v\n", err)
		return exitUsage
	}
	if cfg.HotRestartVersion {
		fmt.Fprintln(stdout, cfg.Version)
		return exitOK
	}
	fc, err := loadConfig(cfg.ConfigFile)
	if cfg.Mode == "validate" {
		if err != nil {
			fmt.Fprintf(stderr, "testproxy: validation failed: %v\n", err)
			return exitFailure
		}
		fmt.Fprintf(stdout, "configuration '%s' OK\n", cfg.ConfigFile)
		return exitOK
	}
	log := newLogger(stderr, cfg.RestartEpoch, cfg.LogFormat)
	defer func() { _ = log.Sync() }()
	if err != nil {
		log.Error("invalid configuration", zap.Error(err))
		return exitFailure
	}
	s := newServer(cfg, fc, log)
	return s.run()
}

func newLogger(w io.Writer, epoch uint32, format string) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	encoder := zapcore.NewConsoleEncoder(enc)
	if format == "json" {
		enc.TimeKey = "time"
		encoder = zapcore.NewJSONEncoder(enc)
	}
	core := zapcore.NewCore(encoder, zapcore.AddSync(w), zapcore.InfoLevel)
	return zap.New(core).Named("testproxy").With(
		zap.Uint32("epoch", epoch), zap.Int("pid", os.Getpid()))
}
