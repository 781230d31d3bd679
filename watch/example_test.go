package watch_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hotrestart/restarter/watch"
)

func ExampleNew() {
	dir, _ := os.MkdirTemp("", "watch-example")
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "envoy.yaml")
	os.WriteFile(cfg, []byte("v1"), 0o644)

	w, err := watch.New([]string{cfg}, 50*time.Millisecond, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()
	os.WriteFile(cfg, []byte("v2"), 0o644)
	<-w.Events() // the restarter would call RequestReload here
	fmt.Println("changed")
	// Output: changed
}
