package alerts

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/logging"
)

// The access log's checkpoints go to the webhook and the file as they
// are, chained, so that `logs verify -checkpoints` can read them back.
func TestCheckpointsReachTheSinks(t *testing.T) {
	var mu sync.Mutex
	var posted [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posted = append(posted, b)
		mu.Unlock()
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "alerts.jsonl")
	a, _ := newTest(t, config.Alerts{Webhook: srv.URL, File: file}, fastTiming)
	dir := t.TempDir()
	w, err := logging.Open(logging.Options{Dir: dir, Location: time.UTC, StateDir: t.TempDir(),
		OnEntry: a.Observe, OnCheckpoint: a.SendCheckpoint})
	if err != nil {
		t.Fatal(err)
	}
	w.Log(&logging.Entry{Src: "proxy", Method: "GET", Host: "a.example", Verdict: "allow", HTTPStatus: 200})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cps, err := logging.ReadCheckpoints(strings.NewReader(string(b)))
	if err != nil || len(cps) != 2 || cps[0].Reason != "start" || cps[1].Reason != "stop" || cps[1].Seq != 1 {
		t.Fatalf("checkpoints in the file: %+v %v\n%s", cps, err, b)
	}
	if p := logging.CheckChain(cps); len(p) > 0 {
		t.Fatal(p)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posted) != 2 {
		t.Fatalf("%d POSTs, want the 2 checkpoints", len(posted))
	}
	var c logging.Checkpoint
	if err := json.Unmarshal(posted[1], &c); err != nil || c != cps[1] {
		t.Fatalf("posted %s, want %+v", posted[1], cps[1])
	}
	if _, _, err := logging.VerifyAgainst(logging.PathFor(dir, time.Now().UTC()), cps); err != nil {
		t.Fatal(err)
	}
}
