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

// Reset drops any partly assembled message. The buffer is kept: the next
// big message (a child pulls stats every flush) then reuses it instead of
// allocating and copying its way up again. It never exceeds the largest
// message that actually arrived.
func (d *Decoder) Reset() {
	d.want = 0
	d.buf = d.buf[:0]
}

// Feed adds one datagram. When it completes a message, Feed returns its
// protobuf bytes and true; the bytes are valid until the next call to Feed or
// Reset and may alias dgram.
//
// A non-nil error reports input that was dropped. Envoy's senders (and ours)
// cut a message into datagrams of exactly MaxDatagram bytes but the last, so
// a datagram of any other size cannot continue the message in progress: the
// partial message is dropped and the datagram is tried as the start of a new
// one. Feed may therefore return a complete message (ok true) together with
// the error about the partial message it replaced. This resynchronizes after
// a truncated message instead of swallowing the next good request.
func (d *Decoder) Feed(dgram []byte) (msg []byte, ok bool, err error) {
	if d.want != 0 {
		if exp := min(MaxDatagram, d.want-len(d.buf)); len(dgram) != exp {
			have, want := len(d.buf), d.want
			d.Reset()
			err = fmt.Errorf("%w: dropped a partial message (%d of %d bytes): next datagram has %d bytes, not %d", ErrFrame, have, want, len(dgram), exp)
			msg, ok, err2 := d.start(dgram)
			if err2 != nil {
				err = errors.Join(err, err2)
			}
			return msg, ok, err
		}
		if need := len(d.buf) + len(dgram); need > cap(d.buf) {
			// Double (append's growth for large slices is 1.25x, which
			// copies a big message about five times over), but never past
			// the message's size: at most twice what actually arrived.
			nb := make([]byte, len(d.buf), min(max(2*cap(d.buf), need), d.want))
			copy(nb, d.buf)
			d.buf = nb
		}
		d.buf = append(d.buf, dgram...)
		if len(d.buf) < d.want {
			return nil, false, nil
		}
		msg = d.buf[headerLen:d.want]
		d.want = 0
		return msg, true, nil
	}
	return d.start(dgram)
}

// start handles the first datagram of a message.
func (d *Decoder) start(dgram []byte) ([]byte, bool, error) {
	if len(dgram) < headerLen {
		return nil, false, fmt.Errorf("%w: a %d-byte datagram cannot start a message (8-byte length prefix)", ErrFrame, len(dgram))
	}
	n := binary.BigEndian.Uint64(dgram)
	if n > uint64(d.Max) {
		return nil, false, fmt.Errorf("%w: message claims %d bytes, more than the limit of %d (MaxMessageSize)", ErrFrame, n, d.Max)
	}
	total := headerLen + int(n)
	if exp := min(MaxDatagram, total); len(dgram) != exp {
		return nil, false, fmt.Errorf("%w: a %d-byte message must start with a %d-byte datagram, got %d bytes", ErrFrame, total, exp, len(dgram))
	}
	if total == len(dgram) {
		return dgram[headerLen:], true, nil // the common case: no copy
	}
	d.Reset()
	d.want = total
	// Grow as bytes arrive, never to what the prefix merely claims.
	d.buf = append(d.buf, dgram...)
	return nil, false, nil
}
