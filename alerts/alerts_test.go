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
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"github.com/schoolgate/schoolgate/logging"
)

// fastTiming keeps the tests short: a 1.5 s window, 150 ms quiet.
var fastTiming = timing{window: 1500 * time.Millisecond, quiet: 150 * time.Millisecond, tick: 10 * time.Millisecond,
	backoff: 10 * time.Millisecond, retries: 6, timeout: 2 * time.Second}

// receiver is a real HTTP webhook receiver that answers failStatus to the
// first fail requests.
type receiver struct {
	srv        *httptest.Server
	mu         sync.Mutex
	alerts     []Alert
	requests   atomic.Int32
	fail       int32
	failStatus int
	hold       chan struct{} // if set, requests wait for it
}

func newReceiver(t *testing.T, fail int32, failStatus int) *receiver {
	t.Helper()
	r := &receiver{fail: fail, failStatus: failStatus}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.hold != nil {
			<-r.hold
		}
		n := r.requests.Add(1)
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if n <= r.fail {
			http.Error(w, "try later", r.failStatus)
			return
		}
		body, _ := io.ReadAll(req.Body)
		var al Alert
		if err := json.Unmarshal(body, &al); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.alerts = append(r.alerts, al)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Alert(nil), r.alerts...)
}

// counter reads a counter from reg (with label sink=sink unless sink is "").
func counter(t *testing.T, reg *prometheus.Registry, name, sink string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := sink == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" && l.GetValue() == sink {
					match = true
				}
			}
			if match {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{sink=%q}", name, sink)
	return 0
}

func entry(user, ip, host string, verdict string, cats ...categories.Category) *logging.Entry {
	return &logging.Entry{Time: time.Now(), Src: "proxy", User: user, IP: ip, Profile: "student", Method: "CONNECT",
		Host: host, Categories: categories.SetOf(cats...), Verdict: verdict, Rule: "student#2"}
}

func newTest(t *testing.T, cfg config.Alerts, tm timing) (*Alerter, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	a, err := newAlerter(cfg, time.UTC, nil, reg, tm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.Close(ctx) //nolint:errcheck // a test may have closed it already
	})
	return a, reg
}

func TestBatchingAndRetry(t *testing.T) {
	rcv := newReceiver(t, 2, http.StatusServiceUnavailable)
	tm := fastTiming
	tm.window = 6 * time.Second // the alerts must come after the quiet period, long before this
	a, reg := newTest(t, config.Alerts{Categories: []string{"adult", "self-harm"}, Webhook: rcv.srv.URL}, tm)

	// A pupil retrying fifty times; another pupil once; noise that must
	// not alert (allowed, or blocked in another category).
	for i := 0; i < 50; i++ {
		host := "www.pornhub.com"
		if i%10 == 9 {
			host = "xvideos.com"
		}
		a.Observe(entry("jack", "10.10.1.27", host, "block", categories.Adult))
	}
	a.Observe(entry("isla", "10.10.1.22", "selfharm.example", "block", categories.SelfHarm, categories.Forums))
	a.Observe(entry("jack", "10.10.1.27", "www.pornhub.com", "allow", categories.Adult))
	a.Observe(entry("jack", "10.10.1.27", "www.bet365.com", "block", categories.Gambling))
	a.Observe(nil)

	start := time.Now()
	testenv.WaitFor(t, "two alerts", func() bool { return len(rcv.got()) == 2 })
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("alerts took %v; want them within the quiet period plus retries", took)
	}
	byUser := map[string]Alert{}
	for _, al := range rcv.got() {
		byUser[al.User] = al
	}
	jack := byUser["jack"]
	if jack.Count != 50 || jack.IP != "10.10.1.27" || strings.Join(jack.Categories, ",") != "adult" ||
		strings.Join(jack.Hosts, ",") != "www.pornhub.com,xvideos.com" || jack.FollowUp {
		t.Errorf("jack's alert = %+v", jack)
	}
	if !strings.Contains(jack.Text, "jack (10.10.1.27, student) — 50 blocked attempts on adult: www.pornhub.com, xvideos.com") {
		t.Errorf("text = %q", jack.Text)
	}
	isla := byUser["isla"]
	if isla.Count != 1 || strings.Join(isla.Categories, ",") != "self-harm" {
		t.Errorf("isla's alert = %+v (only the alert categories belong in it)", isla)
	}
	if n := rcv.requests.Load(); n != 4 {
		t.Errorf("receiver saw %d requests, want 2 failures + 2 alerts", n)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := counter(t, reg, "schoolgate_alerts_sent_total", "webhook"); got != 2 {
		t.Errorf("sent = %v, want 2", got)
	}
	if got := counter(t, reg, "schoolgate_alerts_failures_total", "webhook"); got != 2 {
		t.Errorf("failures = %v, want 2", got)
	}
	if got := counter(t, reg, "schoolgate_alerts_dropped_total", ""); got != 0 {
		t.Errorf("dropped = %v, want 0", got)
	}
}

func TestFollowUpWithinWindow(t *testing.T) {
	rcv := newReceiver(t, 0, 0)
	a, _ := newTest(t, config.Alerts{Categories: []string{"hacking"}, Webhook: rcv.srv.URL}, fastTiming)
	a.Observe(entry("dan", "10.10.1.1", "hack.example", "block", categories.Hacking))
	testenv.WaitFor(t, "the first alert", func() bool { return len(rcv.got()) == 1 })
	sentAt := time.Now()
	// Keep trying after the alert: these gather into one follow-up, sent
	// when the window after the first alert ends.
	for i := 0; i < 5; i++ {
		a.Observe(entry("dan", "10.10.1.1", "hack2.example", "block", categories.Hacking))
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(rcv.got()); n != 1 {
		t.Fatalf("%d alerts before the window ended, want 1", n)
	}
	testenv.WaitFor(t, "the follow-up", func() bool { return len(rcv.got()) == 2 })
	if d := time.Since(sentAt); d < fastTiming.window-200*time.Millisecond {
		t.Errorf("follow-up after %v, want about the window (%v)", d, fastTiming.window)
	}
	fu := rcv.got()[1]
	if !fu.FollowUp || fu.Count != 5 || !strings.Contains(fu.Text, "a further 5 blocked attempts") {
		t.Errorf("follow-up = %+v", fu)
	}
}

func TestStormIsCappedByWindow(t *testing.T) {
	// Attempts that never pause are still reported after the window.
	rcv := newReceiver(t, 0, 0)
	tm := fastTiming
	tm.window = 400 * time.Millisecond
	a, _ := newTest(t, config.Alerts{Categories: []string{"adult"}, Webhook: rcv.srv.URL}, tm)
	stop := time.Now().Add(700 * time.Millisecond)
	for time.Now().Before(stop) && len(rcv.got()) == 0 {
		a.Observe(entry("eve", "10.10.1.3", "x.example", "block", categories.Adult))
		time.Sleep(20 * time.Millisecond)
	}
	if len(rcv.got()) == 0 {
		t.Fatal("no alert during a continuous storm")
	}
}

func TestFileSinkAndCloseFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	tm := fastTiming
	tm.window, tm.quiet = time.Hour, time.Hour // only Close sends
	a, _ := newTest(t, config.Alerts{Categories: []string{"drugs", "violence"}, File: path}, tm)
	a.Observe(entry("", "10.10.3.4", "drugs.example", "block", categories.Drugs))
	a.Observe(entry("", "10.10.3.4", "drugs.example", "block", categories.Drugs))
	a.Observe(entry("fay", "10.10.1.9", "gore.example", "block", categories.Violence))
	time.Sleep(100 * time.Millisecond)
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Fatalf("alerts file before Close: %v, %v; want it empty", st, err)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.Observe(entry("fay", "10.10.1.9", "gore.example", "block", categories.Violence)) // after Close: ignored
	if err := a.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	lines := testenv.ReadJSONLines[Alert](t, path)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	counts := map[string]int{}
	for _, al := range lines {
		counts[al.IP] = al.Count
	}
	if counts["10.10.3.4"] != 2 || counts["10.10.1.9"] != 1 {
		t.Errorf("counts = %v", counts)
	}
	for _, al := range lines {
		if al.User == "" && !strings.Contains(al.Text, "unknown user (10.10.3.4") {
			t.Errorf("text for an unknown user = %q", al.Text)
		}
	}
	// Appending: a second alerter adds to the same file.
	a2, _ := newTest(t, config.Alerts{Categories: []string{"drugs"}, File: path}, tm)
	a2.Observe(entry("gil", "10.10.1.8", "drugs.example", "block", categories.Drugs))
	if err := a2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != 3 {
		t.Errorf("%d lines after a second alerter, want 3", n)
	}
}

func TestUnclassifiedCategory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	a, _ := newTest(t, config.Alerts{Categories: []string{"unclassified"}, File: path}, fastTiming)
	a.Observe(entry("ann", "10.10.1.1", "new-site.example", "block"))
	a.Observe(entry("ann", "10.10.1.1", "www.tiktok.com", "block", categories.Social))
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var al Alert
	if err := json.Unmarshal(data, &al); err != nil || al.Count != 1 || al.Hosts[0] != "new-site.example" ||
		strings.Join(al.Categories, ",") != "unclassified" {
		t.Errorf("alert %s (%v), want one for the unclassified host only", data, err)
	}
}

func TestPermanentFailureNotRetried(t *testing.T) {
	rcv := newReceiver(t, 100, http.StatusBadRequest)
	a, reg := newTest(t, config.Alerts{Categories: []string{"adult"}, Webhook: rcv.srv.URL}, fastTiming)
	a.Observe(entry("hal", "10.10.1.4", "x.example", "block", categories.Adult))
	testenv.WaitFor(t, "the alert to be given up", func() bool { return counter(t, reg, "schoolgate_alerts_dropped_total", "") == 1 })
	if n := rcv.requests.Load(); n != 1 {
		t.Errorf("%d requests for a 400, want 1", n)
	}
}

func TestObserveNeverBlocks(t *testing.T) {
	rcv := newReceiver(t, 0, 0)
	rcv.hold = make(chan struct{}) // the receiver hangs
	tm := fastTiming
	tm.timeout = 200 * time.Millisecond
	tm.retries = 2
	a, _ := newTest(t, config.Alerts{Categories: []string{"adult"}, Webhook: rcv.srv.URL}, tm)
	start := time.Now()
	for i := 0; i < 3*observeQueue; i++ {
		a.Observe(entry("u"+string(rune('a'+i%26)), "10.10.1.1", "x.example", "block", categories.Adult))
	}
	// A blocking Observe would wait for the hung receiver for good; the
	// bound is only there to say so, generous for a loaded machine (under
	// -race these calls take well under a second on a quiet one).
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Observe took %v for %d entries with a hung receiver", took, 3*observeQueue)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := a.Close(ctx)
	close(rcv.hold)
	if err == nil {
		t.Error("Close returned nil although the receiver never answered")
	}
}

// Config validates categories, the webhook URL and batch_seconds (its
// tests); what New can still meet is a file it cannot open.
func TestNewValidates(t *testing.T) {
	if a, err := New(config.Alerts{Categories: []string{"adult"}}, nil, nil, nil); a != nil || err != nil {
		t.Errorf("no sink: got %v, %v; want a nil alerter", a, err)
	}
	var nilA *Alerter
	nilA.Observe(entry("x", "1.2.3.4", "h", "block", categories.Adult)) // must not panic
	if err := nilA.Close(context.Background()); err != nil {
		t.Error(err)
	}
	cases := []struct {
		name string
		cfg  config.Alerts
		want string
	}{
		{"unwritable file", config.Alerts{File: "/nonexistent/dir/alerts.jsonl"}, "alerts file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := New(c.cfg, nil, nil, prometheus.NewRegistry())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one containing %q", err, c.want)
			}
			if a != nil {
				a.Close(context.Background()) //nolint:errcheck
			}
		})
	}
}

func BenchmarkObserveIgnored(b *testing.B) {
	a, err := newAlerter(config.Alerts{Categories: []string{"adult"}, File: filepath.Join(b.TempDir(), "a")}, time.UTC, nil, nil, fastTiming)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close(context.Background()) //nolint:errcheck
	e := entry("x", "1.2.3.4", "h", "allow", categories.Adult)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		a.Observe(e)
	}
}

// TestClassifierMemoryNotAlerted: a block decided from the content
// classifier's memory of a host (rule classifier-memory:…) is not what the
// person asked for: no alert. Their own request blocked as served is.
func TestClassifierMemoryNotAlerted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	a, _ := newTest(t, config.Alerts{Categories: []string{"extremism"}, File: path}, fastTiming)
	e := entry("erin", "10.10.1.21", "forum.example", "block", categories.Extremism)
	e.Rule = "classifier-memory:pages:extremism=0.90"
	a.Observe(e)
	d := entry("dave", "10.10.1.20", "forum.example", "block", categories.Extremism)
	d.Rule = "classifier:extremism=0.95"
	a.Observe(d)
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var al Alert
	if err := json.Unmarshal(data, &al); err != nil || al.User != "dave" || al.Count != 1 {
		t.Errorf("alerts %s (%v), want dave's only", data, err)
	}
}
