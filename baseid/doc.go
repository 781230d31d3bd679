// Package baseid allocates and locks Envoy base ids so that several restarters
// (and so several Envoy instances) can share one host without colliding on
// Envoy's shared memory (/dev/shm/envoy_shared_memory_<id*10>) or its hot-restart
// domain sockets (<socket-path>_{parent,child}_<id*10+k>).
//
// A base id is owned by whoever holds flock(2) on <runtime-dir>/base-id-<id>.lock;
// the holder writes its pid into the file so a second claimant can name it.
// flock is per open file description, so two Acquire calls in one process
// conflict just as two processes do.
//
//	l, err := baseid.Acquire(dir, 7)          // explicit id; *HeldError if taken
//	l, err := baseid.AcquireDynamic(dir, nil) // lowest free id
//	defer l.Close()                           // hold it for the process's life
package baseid
