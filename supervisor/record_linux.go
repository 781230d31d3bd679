package supervisor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hotrestart/restarter/internal/osutil"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// This file is the record of live generations (Config.RecordPath) that lets
// the next supervisor of the same instance end what a SIGKILLed one left
// behind.
//
// PDEATHSIG reaches only a generation's first process: a start script's
// forked proxy (`envoy ... & wait`) outlives a SIGKILLed restarter, holding
// the ports and the base id, and the next restarter's epoch 0 fails. Each
// generation runs in a process group of its own, and the record lists the
// groups with the start time of their leader. Before epoch 0 the next
// supervisor ends, with SIGKILL, every process still in a recorded group
// that carries our base id (BASE_ID=<id> in its environment, which every
// generation gets) and started no earlier than the group's leader: a pid,
// pgid or record left from a different boot or instance matches nothing.
// A process that left its group (setsid) is out of reach.

func (s *Supervisor) writeRecord() {
	if s.cfg.RecordPath == "" {
		return
	}
	var b strings.Builder
	b.WriteString(recordHeader)
	for _, g := range s.gens {
		if g.pgid > 0 {
			fmt.Fprintf(&b, "%d %d %d\n", g.pgid, g.pgStart, g.epoch)
		}
	}
	if err := osutil.WriteFileAtomic(s.cfg.RecordPath, []byte(b.String()), 0o600); err != nil {
		s.log.Warn("cannot record the generations; a restarter that is SIGKILLed may leave a forked proxy behind", zap.Error(err))
	}
}

func (s *Supervisor) removeRecord() {
	if s.cfg.RecordPath != "" && len(s.gens) == 0 {
		os.Remove(s.cfg.RecordPath)
	}
}

// leftoverWait bounds how long endLeftovers waits for what it killed.
const leftoverWait = 5 * time.Second

// endLeftovers ends the processes a previous supervisor of this instance
// left in its generations' process groups (see the top of this file).
func (s *Supervisor) endLeftovers() {
	if s.cfg.RecordPath == "" {
		return
	}
	groups, err := readRecord(s.cfg.RecordPath)
	if os.IsNotExist(err) {
		return
	}
	if err != nil {
		s.log.Warn("generation record", zap.Error(err))
	}
	want := "BASE_ID=" + strconv.FormatUint(uint64(s.cfg.BaseID), 10)
	var killed []int
	for _, pid := range osutil.PIDs() {
		st, ok := readProcStat(pid)
		if !ok || st.state == 'Z' || pid == os.Getpid() {
			continue
		}
		for _, g := range groups {
			if st.pgrp == g.pgid && st.start >= g.start && environHas(pid, want) {
				s.log.Warn("ending a process a previous restarter of this instance left behind",
					zap.Int("pid", pid), zap.Int("pgid", g.pgid), zap.Uint32("epoch", g.epoch))
				if fd := pidfdOpen(pid); fd >= 0 {
					_ = unix.PidfdSendSignal(fd, syscall.SIGKILL, nil, 0)
					unix.Close(fd)
				} else {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				killed = append(killed, pid)
				break
			}
		}
	}
	deadline := time.Now().Add(leftoverWait)
	for _, pid := range killed {
		for {
			st, ok := readProcStat(pid)
			if !ok || st.state == 'Z' || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	os.Remove(s.cfg.RecordPath)
}
