package uds

import (
	"os"
	"sync"
)

// ListenSocket names a listening socket the way a pass_listen_socket
// request does: its Envoy address URL (see AddressURL), the network
// namespace it was bound in ("" for the process's own; Envoy's field 3,
// PR #43653) and the worker index.
type ListenSocket struct {
	Address          string
	NetworkNamespace string
	Worker           uint32
}

// Listeners is a registry of listening sockets by ListenSocket, filled by
// the server and consulted by a Parent: a request matches only a socket of
// the same address, namespace and worker (otherwise the reply is fd -1).
// Safe for concurrent use.
type Listeners struct {
	mu sync.RWMutex
	m  map[ListenSocket]*os.File
}

// NewListeners returns an empty registry.
func NewListeners() *Listeners {
	return &Listeners{m: make(map[ListenSocket]*os.File)}
}

// Add registers f for address and worker in the process's own network
// namespace. See AddSocket.
func (l *Listeners) Add(address string, worker uint32, f *os.File) {
	l.AddSocket(ListenSocket{Address: address, Worker: worker}, f)
}

// AddSocket registers f under k. The registry takes ownership of f: it
// closes a file it replaces, and Close closes all of them. The caller may
// keep using f (for Accept, say) until it calls Close.
func (l *Listeners) AddSocket(k ListenSocket, f *os.File) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.m[k]; ok && old != f {
		old.Close()
	}
	l.m[k] = f
}

// Lookup returns the file registered for address and worker in the
// process's own network namespace. See LookupSocket.
func (l *Listeners) Lookup(address string, worker uint32) (*os.File, bool) {
	return l.LookupSocket(ListenSocket{Address: address, Worker: worker})
}

// LookupSocket returns the file registered under k. The file stays owned by
// the registry.
func (l *Listeners) LookupSocket(k ListenSocket) (*os.File, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	f, ok := l.m[k]
	return f, ok
}

// Len returns the number of registered sockets.
func (l *Listeners) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.m)
}

// Close closes every registered file and empties the registry. Idempotent.
func (l *Listeners) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, f := range l.m {
		f.Close()
		delete(l.m, k)
	}
	return nil
}
