package baseid

// Max is the largest base id: Envoy scales the id by 10 and adds up to 9
// inside a uint32. It is the one bound every command line checks against.
const Max = (1<<32 - 1 - 9) / 10

// DefaultSocketPath is Envoy's default --socket-path.
const DefaultSocketPath = "@envoy_domain_socket"
