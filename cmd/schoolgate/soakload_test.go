package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Issue 19's soak: mixed proxy, CONNECT and DNS load on loopback with a
// reload every 30 s, for SCHOOLGATE_SOAK_DURATION (default 10m; or
// SCHOOLGATE_SOAK_MINUTES): no
// request fails, RSS, goroutines and open files stay flat after the
// warm-up (a fifth of the run), and the day's log verifies. make soak.
func TestSoakMixedLoad(t *testing.T) {
	soak(t)
	duration := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("SCHOOLGATE_SOAK_DURATION")); err == nil && d > 0 {
		duration = d
	}
	// SCHOOLGATE_SOAK_MINUTES=3 is the same as SCHOOLGATE_SOAK_DURATION=3m.
	if v := os.Getenv("SCHOOLGATE_SOAK_MINUTES"); v != "" {
		m, err := strconv.ParseFloat(v, 64)
		if err != nil || m <= 0 {
			t.Fatalf("SCHOOLGATE_SOAK_MINUTES=%q: want a number of minutes", v)
		}
		duration = time.Duration(m * float64(time.Minute))
	}
	bin := e2eBinary(t)
	up := e2eUpstream(t)
	echoPort := e2eEcho(t)
	echoAddr := net.JoinHostPort(e2eUpstreamIP, strconv.Itoa(echoPort))
	// A DNS upstream on 127.0.0.2 that answers every A query.
	pc, err := net.ListenPacket("udp", e2eUpstreamIP+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", e2eUpstreamIP, err)
	}
	dsrv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 127.0.0.9")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m) //nolint:errcheck
	})}
	go dsrv.ActivateAndServe() //nolint:errcheck
	defer dsrv.Shutdown()      //nolint:errcheck

	dir := t.TempDir()
	proxyAddr, adminAddr, dnsAddr := e2eFreeAddr(t), e2eFreeAddr(t), e2eFreeAddr(t)
	write := func(round int) string {
		cfg := fmt.Sprintf(`timezone: UTC
listen: {proxy: %q, dns: %q, admin: %q}
clients: [127.0.0.0/8]
proxy:
  connect_ports: [443, %d]
  deny_destinations: [169.254.0.0/16]
dns: {upstreams: [%q], rate_limit: 0}
default_profile: student
lists:
  - category: gambling
    domains: [casino.test, round%d.test]
profiles:
  student:
    rules:
      - action: block
        categories: [gambling]
    default: allow
log: {dir: logs, retention_days: 0}
`, proxyAddr, dnsAddr, adminAddr, echoPort, pc.LocalAddr().String(), round)
		path := filepath.Join(dir, "schoolgate.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfgPath := write(0)
	s := startEvidence(t, bin, cfgPath, adminAddr)
	pid := s.cmd.Process.Pid

	var ok, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	fail := func(format string, a ...any) {
		failed.Add(1)
		failMu.Lock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, a...))
		}
		failMu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f(i)
			}
		}()
	}
	for w := 0; w < 3; w++ {
		c := proxyClient(proxyAddr)
		worker(func(i int) {
			url := fmt.Sprintf("%s/hello?i=%d", up, i)
			want := 200
			if i%5 == 0 {
				url, want = "http://casino.test/", 403
			}
			resp, err := c.Get(url)
			if err != nil {
				fail("GET %s: %v", url, err)
				return
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			if resp.StatusCode != want {
				fail("GET %s: %s", url, resp.Status)
				return
			}
			ok.Add(1)
		})
	}
	for w := 0; w < 2; w++ {
		worker(func(i int) {
			c, err := net.DialTimeout("tcp", proxyAddr, 10*time.Second)
			if err != nil {
				fail("dial: %v", err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second)) //nolint:errcheck
			fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", echoAddr)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
			if err != nil || resp.StatusCode != 200 {
				fail("CONNECT: %v %v", resp, err)
				return
			}
			for j := 0; j < 3; j++ {
				fmt.Fprintf(c, "ping %d\n", j)
				if l, err := br.ReadString('\n'); err != nil || l != fmt.Sprintf("ping %d\n", j) {
					fail("through the tunnel: %q %v", l, err)
					return
				}
			}
			ok.Add(1)
		})
	}
	for w := 0; w < 2; w++ {
		dc := &dns.Client{Timeout: 3 * time.Second}
		worker(func(i int) {
			name, want := fmt.Sprintf("host%d.example.", i%1000), dns.RcodeSuccess
			if i%4 == 0 {
				name, want = "casino.test.", dns.RcodeNameError
			}
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			var r *dns.Msg
			var err error
			for try := 0; try < 3; try++ { // UDP on a loaded machine
				if r, _, err = dc.Exchange(m, dnsAddr); err == nil {
					break
				}
			}
			if err != nil || r.Rcode != want {
				fail("DNS %s: %v %v", name, r, err)
				return
			}
			ok.Add(1)
		})
	}

	type sample struct {
		at                     time.Duration
		rssKB, goroutines, fds int64
	}
	measure := func(at time.Duration) sample {
		sm := sample{at: at}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			if m := regexp.MustCompile(`VmRSS:\s+(\d+)`).FindSubmatch(b); m != nil {
				sm.rssKB, _ = strconv.ParseInt(string(m[1]), 10, 64)
			}
		}
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
			sm.fds = int64(len(ents))
		}
		if resp, err := http.Get("http://" + adminAddr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if m := regexp.MustCompile(`(?m)^schoolgate_go_goroutines (\d+)`).FindSubmatch(b); m != nil {
				sm.goroutines, _ = strconv.ParseInt(string(m[1]), 10, 64)
			}
		}
		return sm
	}
	var samples []sample
	start := time.Now()
	tick := time.NewTicker(30 * time.Second)
	for round := 1; time.Since(start) < duration; round++ {
		<-tick.C
		write(round)
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		samples = append(samples, measure(time.Since(start)))
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	for _, sm := range samples {
		t.Logf("%6.0fs  rss %6d KB  goroutines %4d  open files %4d", sm.at.Seconds(), sm.rssKB, sm.goroutines, sm.fds)
	}
	t.Logf("%d requests (proxy, CONNECT, DNS) in %v, %d failed; %d reloads", ok.Load(), duration, failed.Load(), len(samples))
	if failed.Load() > 0 {
		t.Errorf("failed requests: %v", failures)
	}
	if !strings.Contains(s.stderr.String(), `"msg":"reloaded"`) || strings.Contains(s.stderr.String(), "reload refused") {
		t.Errorf("the reloads did not all succeed")
	}
	// Flat after the warm-up: each series within 10% of its first value
	// after it (small counts get a few units of slack).
	warm := duration / 5
	var base *sample
	for i := range samples {
		sm := &samples[i]
		if sm.at < warm {
			continue
		}
		if base == nil {
			base = sm
			continue
		}
		check := func(what string, v, b, slack int64) {
			if lim := b + max(b/10, slack); v > lim {
				t.Errorf("%s grew to %d at %.0fs from %d after the warm-up (more than 10%%)", what, v, sm.at.Seconds(), b)
			}
		}
		check("RSS (KB)", sm.rssKB, base.rssKB, 0)
		check("goroutines", sm.goroutines, base.goroutines, 10)
		check("open files", sm.fds, base.fds, 10)
	}
	if code := s.stop(); code != 0 {
		t.Errorf("the stop exited %d", code)
	}
	if code, out := runBin(t, bin, "logs", "verify", "-config", cfgPath); code != 0 {
		t.Errorf("logs verify: %d\n%s", code, out)
	}
}
