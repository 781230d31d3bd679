package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hotrestart/restarter/internal/osutil"
)

// Client talks to one restarter's control socket. It is not safe for
// concurrent use; open one per goroutine.
type Client struct {
	path string
	conn net.Conn
	r    *bufio.Reader
	pid  int // the server's pid from SO_PEERCRED, 0 if unknown
}

// Dial connects to the control socket at path; see DialContext.
func Dial(path string) (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return DialContext(ctx, path)
}

// DialContext connects to the control socket at path and checks who serves
// it (SO_PEERCRED): a server that runs as neither our uid nor root is not
// believed, whatever it would answer, since anyone who could put a socket at
// path could otherwise tell us that a reload succeeded.
func DialContext(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to restarter at %s: %w", path, err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("connecting to restarter at %s: not a Unix socket", path)
	}
	pid, uid, err := serverCred(uc)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connecting to restarter at %s: %w", path, err)
	}
	if me := uint32(os.Geteuid()); uid != me && uid != 0 {
		if err := ownedPrivately(path, uid); err != nil {
			c.Close()
			return nil, fmt.Errorf("refusing the control socket %s: it is served by uid %d (pid %d), neither our uid %d nor root, and %w; remove it and check who can write to its directory", path, uid, pid, me, err)
		}
	}
	return &Client{path: path, conn: uc, r: bufio.NewReaderSize(c, 64<<10), pid: int(pid)}, nil
}

// ownedPrivately reports whether the socket at path belongs to uid and sits
// in a directory private to uid, as a restarter's runtime dir does: then
// root may believe a restarter of that user (`sudo restarter status` for a
// daemon run as envoy). In a directory others may write to, anyone could
// have put the socket there.
func ownedPrivately(path string, uid uint32) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != uid {
		return fmt.Errorf("the socket file is not owned by uid %d", uid)
	}
	if err := osutil.CheckPrivateDirOf(filepath.Dir(path), uid); err != nil {
		return fmt.Errorf("its directory is not private to uid %d: %w", uid, err)
	}
	return nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Status asks for the instance's snapshot.
func (c *Client) Status(ctx context.Context) (Status, error) {
	r, err := c.roundTrip(ctx, OpStatus)
	if err != nil {
		return Status{}, err
	}
	if r.Status == nil {
		return Status{}, fmt.Errorf("status: response without a status")
	}
	return *r.Status, nil
}

// Reload asks for a reload and waits for its outcome. A reload that ran and
// failed is returned as an outcome with OK false, not as an error.
func (c *Client) Reload(ctx context.Context) (ReloadOutcome, error) {
	r, err := c.roundTrip(ctx, OpReload)
	if err != nil {
		return ReloadOutcome{}, err
	}
	if r.Reload == nil {
		return ReloadOutcome{}, fmt.Errorf("reload: response without an outcome")
	}
	return *r.Reload, nil
}

// Stop asks the restarter to stop; it returns once the shutdown has begun.
// WaitGone waits for it to finish.
func (c *Client) Stop(ctx context.Context) error {
	_, err := c.roundTrip(ctx, OpStop)
	return err
}

// WaitGone waits until nothing answers on the socket any more (the
// restarter closed it on exit) or ctx is done.
func (c *Client) WaitGone(ctx context.Context) error {
	// The server closes every connection when it shuts down: wait for EOF,
	// then confirm no new server answers.
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Now()) })
	defer stop()
	c.conn.SetReadDeadline(time.Time{})
	for {
		if _, err := c.r.ReadByte(); err != nil {
			break
		}
	}
	// EOF can also be the server's idle timeout: confirm nothing answers.
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("restarter at %s still running: %w", c.path, err)
		}
		nc, err := net.DialTimeout("unix", c.path, time.Second)
		if err != nil {
			return c.waitExited(ctx)
		}
		nc.Close()
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitExited waits until the server process is gone: the control socket
// closes moments before the process exits, and a caller that starts the
// next instance at once must not meet the old one still running.
func (c *Client) waitExited(ctx context.Context) error {
	if c.pid <= 0 || c.pid == os.Getpid() { // unknown, or a server in this very process
		return nil
	}
	for osutil.ProcessRunning(c.pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("restarter pid %d still running: %w", c.pid, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

func (c *Client) roundTrip(ctx context.Context, op string) (response, error) {
	var r response
	if err := ctx.Err(); err != nil {
		return r, err
	}
	// The deadline comes only from ctx being done, so ctx.Err() is set by
	// the time the read fails.
	c.conn.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Now()) })
	defer stop()
	b, _ := json.Marshal(request{Op: op})
	_, werr := c.conn.Write(append(b, '\n'))
	if werr != nil {
		// A server that refused us (busy, permission) wrote its reason
		// and closed before we wrote: that reason beats "broken pipe".
		c.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	}
	line, err := c.readLine()
	if err != nil {
		if werr != nil {
			err = werr
		}
		return r, c.ctxErr(ctx, op, err)
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("%s: malformed response from %s: %w", op, c.path, err)
	}
	if !r.OK {
		return r, &RemoteError{Op: op, Msg: r.Error, Retry: r.Retry}
	}
	if werr != nil {
		return r, c.ctxErr(ctx, op, werr)
	}
	return r, nil
}

func (c *Client) readLine() ([]byte, error) {
	var buf []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		buf = append(buf, frag...)
		if err == nil {
			return buf, nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if len(buf) > maxResponseSize {
			return nil, fmt.Errorf("response longer than %d bytes", maxResponseSize)
		}
	}
}

func (c *Client) ctxErr(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", op, cerr)
	}
	return fmt.Errorf("%s via %s: %w", op, c.path, err)
}
