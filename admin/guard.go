package admin

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// The admin listener must not become the way to starve the gateway (issue
// 19): idle keep-alive connections are closed after IdleTimeout, at most
// MaxConns are open at once (past it a new connection is closed at once,
// so it holds no file descriptor), and everything but the PAC file is
// answered only to admin.allow.
const (
	DefaultIdleTimeout = 30 * time.Second
	DefaultMaxConns    = 256
)

// NewServer returns the admin listener's server: Handler(o) behind the
// admin.allow guard, with short timeouts.
func NewServer(o Options) *http.Server {
	idle := o.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	return &http.Server{
		Handler:           allowGuard(o, Handler(o)),
		ReadHeaderTimeout: min(10*time.Second, idle), // a silent new connection too
		ReadTimeout:       idle,
		WriteTimeout:      time.Minute,
		IdleTimeout:       idle,
		MaxHeaderBytes:    16 << 10,
	}
}

// Listen wraps ln so that at most max connections (DefaultMaxConns when
// max <= 0) are open at once.
func Listen(ln net.Listener, max int) net.Listener {
	if max <= 0 {
		max = DefaultMaxConns
	}
	return &capListener{Listener: ln, slots: make(chan struct{}, max)}
}

type capListener struct {
	net.Listener
	slots chan struct{}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &capConn{Conn: c, l: l}, nil
		default:
			c.Close() // full: the descriptor goes back at once
		}
	}
}

type capConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.l.slots })
	return err
}

// apiIdentity is the logon API's path (identity.APIPath).
const apiIdentity = "/api/identity"

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// allowGuard answers 403 to a client outside admin.allow (read from the
// snapshot in force, so a reload changes it), except for the PAC file.
func allowGuard(o Options, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/proxy.pac" || r.URL.Path == "/wpad.dat" {
			next.ServeHTTP(w, r)
			return
		}
		allow := loopback
		if o.Engine != nil {
			if s := o.Engine.Snapshot(); s != nil && s.Config != nil {
				allow = s.Config.Admin.Allow
				if r.URL.Path == apiIdentity && o.Identity != nil {
					// Logon scripts run on every school machine.
					allow = append(slices.Clip(allow), s.Config.Clients...)
				}
			}
		}
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		ok := false
		if err == nil {
			ip := ap.Addr().Unmap()
			for _, p := range allow {
				ok = ok || p.Contains(ip)
			}
		}
		if !ok {
			http.Error(w, "forbidden: this address is not in admin.allow", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}
