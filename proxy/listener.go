package proxy

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// limitListener caps the number of client connections open at once: Accept
// waits for a free slot, so extra clients queue in the kernel's backlog
// instead of costing a goroutine and buffers each.
type limitListener struct {
	net.Listener
	slots  chan struct{}
	gauge  prometheus.Gauge
	done   chan struct{}
	closed sync.Once
}

func newLimitListener(ln net.Listener, n int, gauge prometheus.Gauge) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, n), gauge: gauge, done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.gauge.Inc()
	return &clientConn{Conn: c, l: l}, nil
}

func (l *limitListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// clientConn is an accepted client connection that gives its slot back
// when closed (once).
type clientConn struct {
	net.Conn
	l      *limitListener
	closed atomic.Bool
}

func (c *clientConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.gauge.Dec()
		<-c.l.slots
	}
	return err
}

// tcp returns the underlying TCP connection, so that a tunnel can relay
// with splice(2) between two *net.TCPConn.
func (c *clientConn) tcp() (*net.TCPConn, bool) {
	t, ok := c.Conn.(*net.TCPConn)
	return t, ok
}
