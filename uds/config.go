package uds

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hotrestart/restarter/fdpass"
	"go.uber.org/zap"
)

// Config configures a Parent or a Child. Zero fields take the defaults noted.
type Config struct {
	SocketPath     string        // default "@envoy_domain_socket"
	SocketMode     os.FileMode   // default 0600; applies to filesystem sockets only
	BaseID         uint32        // unscaled --base-id
	Epoch          uint32        // this process's restart epoch
	MaxMessageSize int           // default 64 MiB
	Peer           PeerPolicy    // default SameUIDOrRoot()
	Logger         *zap.Logger   // default zap.NewNop()
	Timeout        time.Duration // per-request deadline when ctx has none (default 30s)

	// ConnectRetries is how many times a Child sends a request that meets
	// ECONNREFUSED or ENOENT (no parent socket yet) before giving up with
	// ErrNoParent. Default 10, like Envoy.
	ConnectRetries int
	// RetryDelay is the pause between those tries. Default 1s, like Envoy.
	RetryDelay time.Duration
}

func (c Config) withDefaults() Config {
	if c.SocketPath == "" {
		c.SocketPath = DefaultSocketPath
	}
	if c.SocketMode == 0 {
		c.SocketMode = 0o600
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.Peer == nil {
		c.Peer = SameUIDOrRoot()
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.ConnectRetries <= 0 {
		c.ConnectRetries = 10
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	return c
}

// PeerPolicy decides whether a datagram's sender may talk to us. A non-nil
// error refuses it; the datagram is logged and dropped, never answered.
type PeerPolicy func(fdpass.Ucred) error

// ErrPeerRefused is wrapped by the errors of the built-in policies.
var ErrPeerRefused = errors.New("peer refused")

// SameUIDOrRoot accepts senders running as our own effective uid or as root.
func SameUIDOrRoot() PeerPolicy {
	me := uint32(os.Geteuid())
	return func(c fdpass.Ucred) error {
		if c.UID == me || c.UID == 0 {
			return nil
		}
		return fmt.Errorf("%w: pid %d runs as uid %d; only uid %d (or root) may use this socket", ErrPeerRefused, c.PID, c.UID, me)
	}
}

// AnyPeer accepts every sender: Envoy's own behaviour. Use it only where the
// socket is otherwise protected (a 0600 file in a private directory).
func AnyPeer() PeerPolicy { return func(fdpass.Ucred) error { return nil } }
