package supervisor

// probe is the one place a generation's values are made for everything
// that acts on its behalf: the readiness check, the recheck after a
// rollback and the validator before a reload all get the same Vars as the
// generation's own command line and environment (s.vars), and the same
// command runner. pid is 0 for the validator (nothing started yet).
func (s *Supervisor) probe(epoch uint32, pid int) Probe {
	return Probe{Vars: s.vars(epoch), PID: pid, Run: s.Command, Log: s.log}
}
