module github.com/hotrestart/restarter

go 1.23.0

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/fsnotify/fsnotify v1.10.1
	github.com/spf13/pflag v1.0.10
	go.uber.org/goleak v1.3.0
	go.uber.org/zap v1.28.0
	golang.org/x/sys v0.35.0
	google.golang.org/protobuf v1.36.12
)

require go.uber.org/multierr v1.10.0 // indirect
