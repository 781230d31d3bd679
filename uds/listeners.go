package uds

import (
	"os"
	"sync"
)

type listenerKey struct {
	address string
	worker  uint32
}

// Listeners is a registry of listening sockets by Envoy address URL (see
// AddressURL) and worker index, filled by the server and consulted by a
// Parent. Safe for concurrent use.
type Listeners struct {
	mu sync.RWMutex
	m  map[listenerKey]*os.File
}

// NewListeners returns an empty registry.
func NewListeners() *Listeners {
	return &Listeners{m: make(map[listenerKey]*os.File)}
}

// Add registers f for address and worker. The registry takes ownership of f:
// it closes a file it replaces, and Close closes all of them. The caller may
// keep using f (for Accept, say) until it calls Close.
func (l *Listeners) Add(address string, worker uint32, f *os.File) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := listenerKey{address, worker}
	if old, ok := l.m[k]; ok && old != f {
		old.Close()
	}
	l.m[k] = f
}

// Lookup returns the file registered for address and worker. The file stays
// owned by the registry.
func (l *Listeners) Lookup(address string, worker uint32) (*os.File, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	f, ok := l.m[listenerKey{address, worker}]
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
