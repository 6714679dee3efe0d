// Command origin is the transparent-mode speed harness's origin server,
// run in the origin network namespace: HTTPS on -https (a certificate it
// makes for itself, ECDSA P-256, for every name in -names) answering every
// request with a small body, and a DNS server on -dns answering A questions
// for those names with -ip (the filter's upstream: the client asks the
// filter, the filter asks here and remembers the answer).
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"log"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func main() {
	httpsAddr := flag.String("https", ":443", "HTTPS listen address")
	dnsAddr := flag.String("dns", ":53", "DNS (UDP) listen address; empty: none")
	names := flag.String("names", "allowed.test", "comma-separated names the certificate and the DNS server answer for")
	ip := flag.String("ip", "10.201.2.2", "the address the DNS server gives for the names")
	size := flag.Int("size", 64, "response body size in bytes")
	flag.Parse()

	hosts := strings.Split(*names, ",")
	cert, err := selfSigned(hosts)
	if err != nil {
		log.Fatal(err)
	}
	body := []byte(strings.Repeat("x", *size))
	length := strconv.Itoa(len(body))
	srv := &http.Server{
		Addr:              *httpsAddr,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ErrorLog:          log.New(discard{}, "", 0), // clients cut mid-handshake at the end of a round
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain"}
			h["Content-Length"] = []string{length}
			w.Write(body) //nolint:errcheck
		}),
	}
	if *dnsAddr != "" {
		a := net.ParseIP(*ip).To4()
		if a == nil {
			log.Fatalf("-ip %q is not an IPv4 address", *ip)
		}
		known := make(map[string]bool, len(hosts))
		for _, h := range hosts {
			known[dns.Fqdn(strings.ToLower(h))] = true
		}
		d := &dns.Server{Addr: *dnsAddr, Net: "udp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(q)
			if len(q.Question) != 1 || !known[strings.ToLower(q.Question[0].Name)] {
				m.Rcode = dns.RcodeNameError
			} else if q.Question[0].Qtype == dns.TypeA {
				m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA,
					Class: dns.ClassINET, Ttl: 3600}, A: a}}
			}
			w.WriteMsg(m) //nolint:errcheck
		})}
		go func() { log.Fatal(d.ListenAndServe()) }()
	}
	log.Fatal(srv.ListenAndServeTLS("", ""))
}

// selfSigned is a certificate for names, signed by itself.
func selfSigned(names []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
