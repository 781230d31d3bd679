package loadgen

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ListenStats are the kernel's counters of connections lost at a listening
// socket (TcpExt in /proc/net/netstat): a full accept queue (ListenOverflows)
// and every other drop before accept (ListenDrops, which includes overflows).
type ListenStats struct {
	ListenOverflows uint64
	ListenDrops     uint64
}

// Sub returns the growth from an earlier reading.
func (s ListenStats) Sub(before ListenStats) ListenStats {
	return ListenStats{s.ListenOverflows - before.ListenOverflows, s.ListenDrops - before.ListenDrops}
}

// ReadListenStats reads the counters of the current network namespace.
func ReadListenStats() (ListenStats, error) {
	f, err := os.Open("/proc/net/netstat")
	if err != nil {
		return ListenStats{}, err
	}
	defer f.Close()
	return parseNetstat(bufio.NewScanner(f))
}

// parseNetstat reads the header/value line pairs of /proc/net/netstat.
func parseNetstat(sc *bufio.Scanner) (ListenStats, error) {
	var (
		s     ListenStats
		found int
		hdr   []string
	)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "TcpExt:" {
			continue
		}
		if hdr == nil {
			hdr = fields
			continue
		}
		if len(fields) != len(hdr) {
			return s, fmt.Errorf("/proc/net/netstat: TcpExt has %d names but %d values", len(hdr), len(fields))
		}
		for i, name := range hdr {
			var dst *uint64
			switch name {
			case "ListenOverflows":
				dst = &s.ListenOverflows
			case "ListenDrops":
				dst = &s.ListenDrops
			default:
				continue
			}
			v, err := strconv.ParseUint(fields[i], 10, 64)
			if err != nil {
				return s, fmt.Errorf("/proc/net/netstat: %s=%q: %w", name, fields[i], err)
			}
			*dst = v
			found++
		}
		break
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	if found != 2 {
		return s, fmt.Errorf("/proc/net/netstat: ListenOverflows/ListenDrops not found")
	}
	return s, nil
}
