// Package watch reports changes to configuration files and directories,
// debounced: one event per burst of changes.
//
// It uses fsnotify (inotify) on the parent directory of each watched file and
// on each watched directory, so it sees in-place writes, editors' rename-over
// saves, and the atomic update Kubernetes does for a mounted ConfigMap (a new
// timestamped directory, then the "..data" symlink renamed over to point at
// it). After each quiet period every watched path is re-resolved through its
// symlinks and compared by identity (device, inode, size, mtime) with what
// was last reported; a directory counts as changed on any event inside it.
//
//	w, err := watch.New([]string{"/etc/envoy/envoy.yaml"}, time.Second, log)
//	if err != nil { return err }
//	defer w.Close()
//	for range w.Events() { s.RequestReload() }
package watch
