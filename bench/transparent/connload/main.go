// Command connload is the transparent-mode speed harness's client: for
// -d it opens new HTTPS connections, -c at a time, each a fresh TCP
// connection + a full TLS handshake (no session resumption) + one small
// GET, then closed, and prints how many completed per second.
//
//	connload -target 10.201.2.2:443 -sni allowed.test            # straight to the origin (redirected or not)
//	connload -proxy 10.201.1.1:3128 -target allowed.test:443 ...  # through an explicit proxy (CONNECT)
//
// Its one line of output: "conns/s R ok N errors E p50_ms A p99_ms B",
// then the first error seen, if any.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	c, conc, dur := parseFlags()
	os.Exit(run(c, conc, dur).report())
}

// client opens one connection a round: its settings, from the flags.
type client struct {
	target, proxy string // dial proxy when set, else target
	dialer        *net.Dialer
	timeout       time.Duration
	tls           *tls.Config
	get, connect  []byte // the request, and the CONNECT sent to proxy
}

// parseFlags reads the command line into a client, the connections at a
// time and how long to run; a bad -src exits with status 2.
func parseFlags() (c *client, conc int, dur time.Duration) {
	target := flag.String("target", "10.201.2.2:443", "where to connect (host:port); with -proxy, the CONNECT target")
	proxy := flag.String("proxy", "", "an explicit proxy (host:port) to reach -target through with CONNECT")
	sni := flag.String("sni", "allowed.test", "the TLS server name and the Host header")
	src := flag.String("src", "", "the local address to connect from (empty: any)")
	flag.IntVar(&conc, "c", 16, "connections at a time")
	flag.DurationVar(&dur, "d", 5*time.Second, "how long to run")
	timeout := flag.Duration("timeout", 10*time.Second, "a bound on each connection")
	classic := flag.Bool("classic", false, "offer X25519 and P-256 only: a ClientHello of one segment (the default, with\n"+
		"X25519MLKEM768 as browsers send it, is larger than one)")
	flag.Parse()

	d := &net.Dialer{Timeout: *timeout}
	if *src != "" {
		ip := net.ParseIP(*src)
		if ip == nil {
			fmt.Fprintf(os.Stderr, "connload: -src %q is not an address\n", *src)
			os.Exit(2)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	// The origin's certificate is its own; verifying it would only add the
	// same client CPU to every round.
	tlsCfg := &tls.Config{ServerName: *sni, InsecureSkipVerify: true} //nolint:gosec // see above
	if *classic {
		tlsCfg.CurvePreferences = []tls.CurveID{tls.X25519, tls.CurveP256}
	}
	return &client{
		target: *target, proxy: *proxy, dialer: d, timeout: *timeout, tls: tlsCfg,
		get:     []byte("GET / HTTP/1.1\r\nHost: " + *sni + "\r\nUser-Agent: connload\r\nConnection: close\r\n\r\n"),
		connect: []byte("CONNECT " + *target + " HTTP/1.1\r\nHost: " + *target + "\r\n\r\n"),
	}, conc, dur
}

// one is a round: a new connection (through the proxy's CONNECT when
// there is one), a full TLS handshake and one GET that must answer 200.
func (cl *client) one() error {
	addr := cl.target
	if cl.proxy != "" {
		addr = cl.proxy
	}
	c, err := cl.dialer.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(cl.timeout)) //nolint:errcheck
	if cl.proxy != "" {
		if _, err := c.Write(cl.connect); err != nil {
			return err
		}
		if err := readConnectReply(c); err != nil {
			return err
		}
	}
	tc := tls.Client(c, cl.tls)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	if _, err := tc.Write(cl.get); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		return fmt.Errorf("reading the response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return err
}

// tally is what a run counted.
type tally struct {
	ok, errs int
	firstErr error
	lat      []time.Duration // of the rounds that succeeded
	elapsed  time.Duration
}

// run makes rounds conc at a time for dur and counts them.
func run(cl *client, conc int, dur time.Duration) *tally {
	var (
		mu sync.Mutex
		t  tally
		wg sync.WaitGroup
	)
	start := time.Now()
	stop := start.Add(dur)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine tally // counted apart, added once: no lock per round
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := cl.one(); err != nil {
					mine.errs++
					if mine.firstErr == nil {
						mine.firstErr = err
					}
					continue
				}
				mine.ok++
				mine.lat = append(mine.lat, time.Since(t0))
			}
			mu.Lock()
			t.ok += mine.ok
			t.errs += mine.errs
			t.lat = append(t.lat, mine.lat...)
			if t.firstErr == nil {
				t.firstErr = mine.firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.elapsed = time.Since(start)
	return &t
}

// report prints the run's line (and its first error) and returns the exit
// status: 1 when no round succeeded.
func (t *tally) report() int {
	slices.Sort(t.lat)
	pct := func(p float64) float64 {
		if len(t.lat) == 0 {
			return 0
		}
		return float64(t.lat[int(p*float64(len(t.lat)-1))]) / float64(time.Millisecond)
	}
	fmt.Printf("conns/s %.1f ok %d errors %d p50_ms %.2f p99_ms %.2f\n",
		float64(t.ok)/t.elapsed.Seconds(), t.ok, t.errs, pct(0.5), pct(0.99))
	if t.firstErr != nil {
		fmt.Printf("first error: %v\n", t.firstErr)
	}
	if t.ok == 0 {
		return 1
	}
	return 0
}

// readConnectReply reads a proxy's reply to CONNECT and wants a 200. Its
// end is the end of what was read: in TLS the client speaks first, so
// nothing of the origin's can follow before the handshake starts.
func readConnectReply(c net.Conn) error {
	buf := make([]byte, 0, 512)
	for len(buf) < cap(buf) {
		n, err := c.Read(buf[len(buf):cap(buf)])
		if err != nil {
			return fmt.Errorf("reading the CONNECT reply: %w", err)
		}
		buf = buf[:len(buf)+n]
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200")) && !bytes.HasPrefix(buf, []byte("HTTP/1.0 200")) {
				return fmt.Errorf("CONNECT refused: %q", buf)
			}
			return nil
		}
	}
	return errors.New("CONNECT reply too long")
}
