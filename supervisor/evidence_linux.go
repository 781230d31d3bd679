package supervisor

import "strconv"

// This file is the evidence the supervisor trusts about a generation that
// readiness probes cannot give: whether it still listens (and stoppedState,
// in procstat.go: whether it is stopped). Both come from /proc, not from an
// address another process may have taken over (the admin address passes to
// every new generation, even one that then dies).

// listening reports whether the process tree of the generation (pid, with
// its descendants and re-parented forks that carry its RESTART_EPOCH) holds
// at least one TCP socket in LISTEN state. ok is false when /proc cannot be
// read (no evidence either way).
func listening(pid int, epoch uint32) (yes, ok bool) {
	ls, err := tcpListeners()
	if err != nil {
		return false, false
	}
	inodes := make(map[uint64]struct{}, len(ls))
	for _, l := range ls {
		inodes[l.Inode] = struct{}{}
	}
	if len(inodes) == 0 {
		return false, true
	}
	for _, p := range processTree(pid, "RESTART_EPOCH="+strconv.FormatUint(uint64(epoch), 10)) {
		if holdsAny(p, inodes) != 0 {
			return true, true
		}
	}
	return false, true
}
