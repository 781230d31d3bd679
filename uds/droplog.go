package uds

import (
	"time"

	"go.uber.org/zap"
)

// dropLogInterval is how often an endpoint logs dropped or refused input:
// the first drop is logged at once, later ones are counted and summarized in
// at most one line per interval, so a flood of bad datagrams cannot flood the
// log.
const dropLogInterval = 10 * time.Second

// dropLog rate-limits the warnings about input an endpoint drops. It is used
// by the one goroutine that reads the endpoint's socket at a time.
type dropLog struct {
	interval   time.Duration
	last       time.Time // when the last line was written
	suppressed int       // drops since then that were not logged
}

// warn logs msg unless a line was written less than an interval ago; then it
// only counts it. The next line written says how many were not.
func (e *endpoint) warnDrop(msg string, fields ...zap.Field) {
	d := &e.drops
	now := time.Now()
	if !d.last.IsZero() && now.Sub(d.last) < d.interval {
		d.suppressed++
		return
	}
	if d.suppressed > 0 {
		fields = append(fields, zap.Int("suppressed_since_last", d.suppressed),
			zap.Duration("over", now.Sub(d.last).Round(time.Millisecond)))
	}
	e.log.Warn(msg, fields...)
	d.last, d.suppressed = now, 0
}

// flushDrops writes the count of drops not yet reported, if any (on close).
func (e *endpoint) flushDrops() {
	if d := &e.drops; d.suppressed > 0 {
		e.log.Warn("more hot-restart input was dropped than logged",
			zap.Int("suppressed_since_last", d.suppressed), zap.Duration("over", time.Since(d.last).Round(time.Millisecond)))
		d.suppressed = 0
	}
}
