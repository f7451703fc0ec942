package callback

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// DefaultMaxConns bounds the public listener's connections when the
// open-file limit does not call for fewer (see MaxConns).
const DefaultMaxConns = 4096

// MaxConns returns the bound on the public listener's connections:
// DefaultMaxConns, or half the process's open-file limit when that is
// lower, so connections leave descriptors for the directory, the journal,
// the plugins and the admin listener.
func MaxConns() int {
	n := DefaultMaxConns
	if lim := openFileLimit(); lim > 0 && lim/2 < uint64(n) {
		n = max(int(lim/2), 1)
	}
	return n
}

// ConnLimiter is a listener that keeps at most a bound of connections
// open. At the bound, a new connection takes the place of the one that has
// waited longest without a request in progress (idle between keep-alive
// requests, or new and silent), which is closed; when every connection is
// busy, Accept waits for one to end. So idle connections cannot exhaust
// file descriptors nor keep new callers out. The server's ConnState must
// call ConnLimiter.ConnState: that is how it learns which are idle.
//
// A request sent on an idle connection just as it is closed fails; HTTP
// clients retry an idempotent GET on a reused connection that fails so.
type ConnLimiter struct {
	net.Listener
	slots     chan struct{} // one token per open connection
	done      chan struct{} // closed by Close
	closeOnce sync.Once

	mu   sync.Mutex
	seq  uint64
	idle map[net.Conn]uint64 // the server's conn → when it turned idle (seq)
}

// LimitListener returns l bounded to n connections at once (n < 1 means
// 1).
func LimitListener(l net.Listener, n int) *ConnLimiter {
	return &ConnLimiter{
		Listener: l,
		slots:    make(chan struct{}, max(n, 1)),
		done:     make(chan struct{}),
		idle:     map[net.Conn]uint64{},
	}
}

// Accept accepts a connection, then makes room for it: a free place, the
// place of the longest idle connection, or the first place freed.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	select {
	case l.slots <- struct{}{}:
	default:
		l.closeIdlest()
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
	return &limitedConn{Conn: c, l: l}, nil
}

// Close closes the listener and ends an Accept waiting for room.
func (l *ConnLimiter) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open returns the connections open now.
func (l *ConnLimiter) Open() int { return len(l.slots) }

// ConnState is the http.Server's ConnState hook.
func (l *ConnLimiter) ConnState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	switch s {
	case http.StateNew, http.StateIdle:
		l.seq++
		l.idle[c] = l.seq
	default: // active, hijacked, closed
		delete(l.idle, c)
	}
	l.mu.Unlock()
}

// closeIdlest closes the connection idle the longest, if any.
func (l *ConnLimiter) closeIdlest() {
	l.mu.Lock()
	var oldest net.Conn
	var at uint64
	for c, seq := range l.idle {
		if oldest == nil || seq < at {
			oldest, at = c, seq
		}
	}
	if oldest != nil {
		delete(l.idle, oldest)
	}
	l.mu.Unlock()
	if oldest == nil {
		return
	}
	// Close the TCP connection itself: a TLS close_notify could block.
	if nc, ok := oldest.(interface{ NetConn() net.Conn }); ok {
		oldest = nc.NetConn()
	}
	oldest.Close()
}

// limitedConn gives its place back once, at its first Close.
type limitedConn struct {
	net.Conn
	l      *ConnLimiter
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		<-c.l.slots
	}
	return err
}
