package dnsfilter

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// DNS over TCP. miekg's server answers the queries of one connection
// strictly one after another, so a slow miss holds up the cached answers
// pipelined behind it. Here each query of a connection runs on its own
// goroutine and its answer is written as soon as it is ready (RFC 7766
// §6.2.1.1); the message ID tells the client which is which.

const (
	// tcpIdle closes a connection with no query for this long (RFC 7766
	// §6.2.3 suggests seconds, not minutes).
	tcpIdle = 10 * time.Second
	// tcpWriteTimeout bounds writing one answer.
	tcpWriteTimeout = 2 * time.Second
	// tcpInFlight bounds the queries of one connection being answered at
	// once; reading waits beyond it.
	tcpInFlight = 64
	// tcpMaxConns bounds the open connections; more are closed at once.
	tcpMaxConns = 1024
)

type tcpServer struct {
	s     *Server
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
	wg    sync.WaitGroup // the accept loop, connections and their queries
}

func (t *tcpServer) maxConns() int {
	if n := t.s.o.MaxTCPConns; n > 0 {
		return n
	}
	return tcpMaxConns
}

func newTCPServer(s *Server, ln net.Listener) *tcpServer {
	return &tcpServer{s: s, ln: ln, conns: make(map[net.Conn]struct{})}
}

func (t *tcpServer) serve() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.s.logger.Debug("accepting dns over tcp", zap.Error(err))
			time.Sleep(10 * time.Millisecond) // never spin on a persistent error
			continue
		}
		t.mu.Lock()
		if t.done || len(t.conns) >= t.maxConns() {
			t.mu.Unlock()
			c.Close()
			continue
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.conn(c)
	}
}

// conn reads the queries of one connection and answers each on a
// goroutine of its own.
func (t *tcpServer) conn(c net.Conn) {
	w := &tcpWriter{conn: c}
	var queries sync.WaitGroup
	defer func() {
		if p := recover(); p != nil {
			t.s.logger.Error("dns tcp connection panic", zap.Any("panic", p), zap.Stack("stack"))
		}
		queries.Wait() // their answers go out before the close
		c.Close()
		t.mu.Lock()
		delete(t.conns, c)
		t.mu.Unlock()
		t.wg.Done()
	}()
	slots := make(chan struct{}, tcpInFlight)
	br := bufio.NewReader(c)
	var l [2]byte
	for {
		if err := c.SetReadDeadline(time.Now().Add(tcpIdle)); err != nil {
			return
		}
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(l[:]))
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return
		}
		slots <- struct{}{}
		queries.Add(1)
		go func() {
			defer func() { <-slots; queries.Done() }()
			t.s.serveWire(b, w)
		}()
	}
}

// close stops accepting, closes every connection and waits for their
// queries until ctx ends (see Shutdown).
func (t *tcpServer) close() {
	t.mu.Lock()
	t.done = true
	t.ln.Close()
	for c := range t.conns {
		// Reading stops at once; answers being written get their
		// tcpWriteTimeout.
		c.SetReadDeadline(time.Now()) //nolint:errcheck // closing anyway
	}
	t.mu.Unlock()
}

// tcpWriter writes the answers of one connection, whole and one at a
// time, in whatever order they are ready.
type tcpWriter struct {
	mu   sync.Mutex
	conn net.Conn
}

func (w *tcpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *tcpWriter) RemoteAddr() net.Addr { return w.conn.RemoteAddr() }
func (w *tcpWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *tcpWriter) Write(b []byte) (int, error) {
	if len(b) > dns.MaxMsgSize {
		return 0, errors.New("dns answer too big for tcp")
	}
	out := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(out, uint16(len(b)))
	copy(out[2:], b)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.conn.SetWriteDeadline(time.Now().Add(tcpWriteTimeout)); err != nil {
		return 0, err
	}
	if _, err := w.conn.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
func (w *tcpWriter) Close() error        { return w.conn.Close() }
func (w *tcpWriter) TsigStatus() error   { return nil }
func (w *tcpWriter) TsigTimersOnly(bool) {}
func (w *tcpWriter) Hijack()             {}
