// Command bareproxy is the speed harness's baseline: goproxy as a plain
// forward proxy with no filtering, its transport tuned to keep idle
// upstream connections (as any real deployment would).
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/elazarl/goproxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	flag.Parse()
	p := goproxy.NewProxyHttpServer()
	p.Tr = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        8192,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
	}
	p.KeepAcceptEncoding = true
	srv := &http.Server{Addr: *addr, Handler: p, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
