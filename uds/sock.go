package uds

import (
	"errors"
	"syscall"
	"time"
)

// printable shows an address without its NUL padding.
func printable(name string) string {
	for i := 1; i < len(name); i++ {
		if name[i] == 0 {
			return name[:i]
		}
	}
	return name
}

// noParent reports whether err means nobody is bound to the address yet.
func noParent(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// datagram is one received datagram that passed the peer policy.
type datagram struct {
	data []byte
	fds  []int
	from string // sender address, "" if unbound
}

// setDeadline applies t (zero: none) to both directions.
func (e *endpoint) setDeadline(t time.Time) { e.conn.SetDeadline(t) }
