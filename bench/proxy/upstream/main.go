// Command upstream is the speed harness's origin server: every request
// gets the same 1 KiB body, over keep-alive.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.2:18080", "listen address")
	size := flag.Int("size", 1024, "response body size in bytes")
	flag.Parse()
	body := []byte(strings.Repeat("x", *size))
	length := strconv.Itoa(len(body))
	srv := &http.Server{
		Addr:              *addr,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain"}
			h["Content-Length"] = []string{length}
			w.Write(body) //nolint:errcheck
		}),
	}
	log.Fatal(srv.ListenAndServe())
}
