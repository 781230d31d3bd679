package drain_test

import (
	"fmt"
	"time"

	"github.com/hotrestart/restarter/drain"
)

func ExampleManager() {
	m, err := drain.New(drain.Config{DrainTime: 10 * time.Millisecond, Strategy: drain.Immediate})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	fmt.Println("before Start:", m.Draining(), m.DrainClose())
	m.Start()
	fmt.Println("after Start:", m.Draining(), m.DrainClose())
	<-m.Done()
	fmt.Println("drain over")
	// Output:
	// before Start: false false
	// after Start: true true
	// drain over
}
