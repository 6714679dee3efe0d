package alerts

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"github.com/schoolgate/schoolgate/logging"
)

// TestWiredToTheLogWriter wires the alerter as serve does: the access-log
// writer's OnEntry hook feeds Observe.
func TestWiredToTheLogWriter(t *testing.T) {
	rcv := newReceiver(t, 1, http.StatusBadGateway)
	a, _ := newTest(t, config.Alerts{Categories: []string{"extremism"}, Webhook: rcv.srv.URL}, fastTiming)
	w, err := logging.Open(logging.Options{Dir: t.TempDir(), Location: time.UTC, OnEntry: a.Observe})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		w.Log(&logging.Entry{Time: time.Now(), Src: "proxy", User: "kim", IP: "10.10.1.40", Profile: "student",
			Method: "CONNECT", Host: "extreme.example", Categories: categories.SetOf(categories.Extremism),
			Verdict: "block", Rule: "student#2", HTTPStatus: 403})
		w.Log(&logging.Entry{Time: time.Now(), Src: "proxy", User: "kim", IP: "10.10.1.40", Profile: "student",
			Method: "CONNECT", Host: "www.bbc.co.uk", Verdict: "allow", Rule: "student#default", HTTPStatus: 200})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, "the alert", func() bool { return len(rcv.got()) == 1 })
	al := rcv.got()[0]
	if al.Count != 20 || al.User != "kim" || al.Hosts[0] != "extreme.example" {
		b, _ := json.Marshal(al)
		t.Errorf("alert = %s", b)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
