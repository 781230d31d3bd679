package control

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/hotrestart/restarter/internal/osutil"
)

// ExitRecord is the verdict a restarter leaves in its runtime dir as it
// exits, next to its control socket, so that `restarter stop` (which sees
// only the socket close) can tell an exit 1 from a clean stop.
type ExitRecord struct {
	PID    int    `json:"pid"`  // the restarter that exited
	Code   int    `json:"code"` // its exit code
	Reason string `json:"reason,omitempty"`
}

// ExitRecordPath is where the restarter whose control socket is socketPath
// leaves its ExitRecord.
func ExitRecordPath(socketPath string) string {
	return strings.TrimSuffix(socketPath, socketSuffix) + ".exit"
}

// WriteExitRecord writes r to path atomically (temporary file and rename).
func WriteExitRecord(path string, r ExitRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("exit record: %w", err)
	}
	if err := osutil.WriteFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("exit record: %w", err)
	}
	return nil
}

// ReadExitRecord reads the record at path.
func ReadExitRecord(path string) (ExitRecord, error) {
	var r ExitRecord
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if len(b) > 64<<10 {
		return r, fmt.Errorf("exit record %s: %d bytes, too long", path, len(b))
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("exit record %s: %w", path, err)
	}
	return r, nil
}
