package supervisor_test

import (
	"fmt"
	"time"

	"github.com/hotrestart/restarter/supervisor"
)

func ExampleExpand() {
	v := supervisor.Vars{Epoch: 2, BaseID: 7, DrainTimeS: supervisor.Seconds(90 * time.Second), ParentShutdownTimeS: 120}
	argv := supervisor.Expand([]string{"/usr/bin/envoy", "-c", "/etc/envoy/{{base_id}}.yaml", "--log-path", "/var/log/envoy.{{epoch}}.log"}, v)
	fmt.Println(append(argv, supervisor.EnvoyArgs(v)...))
	// Output: [/usr/bin/envoy -c /etc/envoy/7.yaml --log-path /var/log/envoy.2.log --restart-epoch 2 --base-id 7 --drain-time-s 90 --parent-shutdown-time-s 120]
}

func ExampleParseServerInfo() {
	state, epoch, err := supervisor.ParseServerInfo([]byte(`{"state":"LIVE","command_line_options":{"restart_epoch":"3"}}`))
	fmt.Println(state, epoch, err)
	// Output: LIVE 3 <nil>
}
