// Package hotrestartpb holds the Go code generated from hot_restart.proto,
// Envoy's HotRestartMessage (protobuf package envoy). Do not edit
// hot_restart.pb.go: change the .proto and run go generate.
package hotrestartpb

//go:generate protoc --plugin=protoc-gen-go=$HOME/go/bin/protoc-gen-go --go_out=. --go_opt=paths=source_relative hot_restart.proto
