package control_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hotrestart/restarter/control"
)

func Example() {
	dir, _ := os.MkdirTemp("", "restarter-example")
	defer os.RemoveAll(dir)

	// Server side, in the restarter.
	h := control.HandlerFuncs{
		StatusFunc: func(context.Context) (control.Status, error) {
			return control.Status{Name: "edge", PID: 100, Generations: []control.Generation{
				{Epoch: 1, PID: 102, State: control.StateReady, Started: time.Unix(0, 0)},
			}}, nil
		},
		ReloadFunc: func(context.Context) (control.ReloadOutcome, error) {
			return control.ReloadOutcome{OK: false, Epoch: 2, Reason: "validation failed"}, nil
		},
	}
	srv, err := control.NewServer(control.SocketPath(dir, control.InstanceName("edge", 0)), h, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	// Client side: the single instance in the dir is found without a selector.
	path, _ := control.Find(dir, "")
	fmt.Println(filepath.Base(path))
	c, _ := control.Dial(path)
	defer c.Close()
	st, _ := c.Status(context.Background())
	fmt.Println(st.Name, st.Generations[0].Epoch, st.Generations[0].State)
	out, _ := c.Reload(context.Background())
	fmt.Println(out.OK, out.Reason)
	// Output:
	// edge.ctl
	// edge 1 ready
	// false validation failed
}
