package uds

import (
	"net"
	"os"

	"github.com/hotrestart/restarter/uds/hotrestartpb"
	"go.uber.org/zap"
)

// endpoint is the state shared by Parent and Child: one bound datagram socket,
// its buffers and its decoder.
type endpoint struct {
	conn *net.UnixConn
	file string // filesystem socket to remove on close, "" if abstract
	peer PeerPolicy
	// expectFrom, if set, is the only sender address accepted: Envoy's
	// parent and child always send from their bound sockets.
	expectFrom string
	log        *zap.Logger
	rbuf       []byte // one datagram
	wbuf       []byte // reused wire buffer
	dec        *Decoder
	msg        hotrestartpb.HotRestartMessage
	drops      dropLog // rate-limits warnings about dropped input
}

func newEndpoint(cfg Config, name string) (*endpoint, error) {
	conn, file, err := bind(name, cfg.SocketMode)
	if err != nil {
		return nil, err
	}
	return &endpoint{
		conn:  conn,
		file:  file,
		peer:  cfg.Peer,
		log:   cfg.Logger,
		rbuf:  make([]byte, MaxDatagram),
		dec:   NewDecoder(cfg.MaxMessageSize),
		drops: dropLog{interval: dropLogInterval},
	}, nil
}

func (e *endpoint) close() error {
	err := e.conn.Close()
	if e.file != "" {
		os.Remove(e.file)
	}
	return err
}

func errField(err error) zap.Field { return zap.Error(err) }
