//go:build linux

package uds

import "golang.org/x/sys/unix"

func unixRights(fds ...int) []byte { return unix.UnixRights(fds...) }
