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
	target := flag.String("target", "10.201.2.2:443", "where to connect (host:port); with -proxy, the CONNECT target")
	proxy := flag.String("proxy", "", "an explicit proxy (host:port) to reach -target through with CONNECT")
	sni := flag.String("sni", "allowed.test", "the TLS server name and the Host header")
	src := flag.String("src", "", "the local address to connect from (empty: any)")
	conc := flag.Int("c", 16, "connections at a time")
	dur := flag.Duration("d", 5*time.Second, "how long to run")
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
	get := []byte("GET / HTTP/1.1\r\nHost: " + *sni + "\r\nUser-Agent: connload\r\nConnection: close\r\n\r\n")
	connect := []byte("CONNECT " + *target + " HTTP/1.1\r\nHost: " + *target + "\r\n\r\n")

	one := func() error {
		addr := *target
		if *proxy != "" {
			addr = *proxy
		}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(*timeout)) //nolint:errcheck
		if *proxy != "" {
			if _, err := c.Write(connect); err != nil {
				return err
			}
			if err := readConnectReply(c); err != nil {
				return err
			}
		}
		tc := tls.Client(c, tlsCfg)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		if _, err := tc.Write(get); err != nil {
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

	var (
		mu       sync.Mutex
		ok, errs int
		firstErr error
		lat      []time.Duration
		wg       sync.WaitGroup
	)
	start := time.Now()
	stop := start.Add(*dur)
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			n, e := 0, 0
			var first error
			for time.Now().Before(stop) {
				t0 := time.Now()
				if err := one(); err != nil {
					e++
					if first == nil {
						first = err
					}
					continue
				}
				n++
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			ok += n
			errs += e
			lat = append(lat, mine...)
			if firstErr == nil {
				firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	fmt.Printf("conns/s %.1f ok %d errors %d p50_ms %.2f p99_ms %.2f\n",
		float64(ok)/elapsed.Seconds(), ok, errs, pct(0.5), pct(0.99))
	if firstErr != nil {
		fmt.Printf("first error: %v\n", firstErr)
	}
	if ok == 0 {
		os.Exit(1)
	}
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
