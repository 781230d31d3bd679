package uds

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hotrestart/restarter/uds/hotrestartpb"
	"google.golang.org/protobuf/proto"
)

// MaxDatagram is the largest datagram Envoy sends (its MaxSendmsgSize).
const MaxDatagram = 4096

// DefaultMaxMessageSize bounds a decoded message unless Config says otherwise.
const DefaultMaxMessageSize = 64 << 20

// headerLen is the 8-byte big-endian length prefix of every message.
const headerLen = 8

// ErrFrame is wrapped by every framing error.
var ErrFrame = errors.New("bad hot-restart frame")

// appendMessage appends the wire form of m (length prefix and protobuf bytes)
// to buf[:0] and returns it.
func appendMessage(buf []byte, m *hotrestartpb.HotRestartMessage) ([]byte, error) {
	opts := proto.MarshalOptions{UseCachedSize: true}
	size := opts.Size(m)
	if cap(buf) < headerLen+size {
		buf = make([]byte, 0, headerLen+size)
	}
	buf = binary.BigEndian.AppendUint64(buf[:0], uint64(size))
	buf, err := opts.MarshalAppend(buf, m)
	if err != nil {
		return nil, fmt.Errorf("marshal HotRestartMessage: %w", err)
	}
	return buf, nil
}

// Decoder reassembles messages from datagrams. It never allocates more than
// the bytes that actually arrived, whatever a length prefix claims, and
// rejects messages longer than Max. The zero value is not ready: use
// newDecoder.
type Decoder struct {
	Max  int    // largest accepted protobuf size in bytes
	buf  []byte // bytes of the message being assembled, prefix included
	want int    // total bytes of the message being assembled; 0 when idle
}

// NewDecoder returns a Decoder accepting messages up to max bytes (<= 0 means
// DefaultMaxMessageSize).
func NewDecoder(max int) *Decoder {
	if max <= 0 {
		max = DefaultMaxMessageSize
	}
	return &Decoder{Max: max}
}

// InProgress reports whether part of a message has arrived.
func (d *Decoder) InProgress() bool { return d.want != 0 }

// Reset drops any partly assembled message.
func (d *Decoder) Reset() {
	d.want = 0
	d.buf = d.buf[:0]
	if cap(d.buf) > 4<<20 {
		d.buf = nil // do not pin a large message's buffer
	}
}

// Feed adds one datagram. When it completes a message, Feed returns its
// protobuf bytes and true; the bytes are valid until the next call to Feed or
// Reset and may alias dgram. On error the partial message is dropped and the
// decoder is ready for a new one.
func (d *Decoder) Feed(dgram []byte) ([]byte, bool, error) {
	if d.want == 0 {
		if len(dgram) < headerLen {
			return nil, false, fmt.Errorf("%w: a %d-byte datagram cannot start a message (8-byte length prefix)", ErrFrame, len(dgram))
		}
		n := binary.BigEndian.Uint64(dgram)
		if n > uint64(d.Max) {
			return nil, false, fmt.Errorf("%w: message claims %d bytes, more than the limit of %d (MaxMessageSize)", ErrFrame, n, d.Max)
		}
		total := headerLen + int(n)
		if len(dgram) > total {
			return nil, false, fmt.Errorf("%w: %d-byte datagram is longer than the %d-byte message it starts", ErrFrame, len(dgram), total)
		}
		if len(dgram) == total {
			return dgram[headerLen:], true, nil // the common case: no copy
		}
		d.Reset()
		d.want = total
	} else if len(d.buf)+len(dgram) > d.want {
		want := d.want
		have := len(d.buf)
		d.Reset()
		return nil, false, fmt.Errorf("%w: %d more bytes arrived for a message with %d of %d bytes: not aligned to a message start", ErrFrame, len(dgram), have, want)
	}
	d.buf = append(d.buf, dgram...)
	if len(d.buf) < d.want {
		return nil, false, nil
	}
	msg := d.buf[headerLen:d.want]
	d.want = 0
	return msg, true, nil
}
