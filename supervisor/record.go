package supervisor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// The record of live generations (Config.RecordPath): its format. Writing it
// and ending what it lists are Linux-only (record_linux.go).

const recordHeader = "# restarter generations: pgid leader-start-ticks epoch\n"

type recordedGroup struct {
	pgid  int
	start uint64
	epoch uint32
}

func readRecord(path string) ([]recordedGroup, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []recordedGroup
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var r recordedGroup
		if _, err := fmt.Sscanf(line, "%d %d %d", &r.pgid, &r.start, &r.epoch); err != nil || r.pgid <= 1 {
			return out, fmt.Errorf("%s: bad line %q", path, line)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}
