package sdnotify_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/hotrestart/restarter/sdnotify"
)

// A generation's notify socket: the READY=1 counts because its sender (here
// this very process) is accepted.
func ExampleListen() {
	dir, _ := os.MkdirTemp("", "sdnotify-example")
	defer os.RemoveAll(dir)
	self := os.Getpid()
	l, err := sdnotify.Listen(filepath.Join(dir, "gen.notify"), func(pid int) bool { return pid == self }, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	c, _ := net.Dial("unixgram", l.Path()) // what sd_notify(3) in the proxy does
	c.Write([]byte("STATUS=starting\nREADY=1\n"))
	c.Close()
	<-l.Ready()
	fmt.Println("ready")
	// Output: ready
}
