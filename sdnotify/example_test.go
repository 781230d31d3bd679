package sdnotify_test

import (
	"fmt"

	"github.com/hotrestart/restarter/sdnotify"
)

func ExampleStripEnv() {
	env := []string{"PATH=/usr/bin", "NOTIFY_SOCKET=/run/systemd/notify", "WATCHDOG_USEC=30000000", "RESTART_EPOCH=3"}
	fmt.Println(sdnotify.StripEnv(env))
	// Output: [PATH=/usr/bin RESTART_EPOCH=3]
}
