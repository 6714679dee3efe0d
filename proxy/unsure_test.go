package proxy

import (
	"bytes"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"github.com/schoolgate/schoolgate/policy"
	"github.com/schoolgate/schoolgate/report"
)

// TestContentUnsure: a page scoring between the profile's threshold and
// clear evidence is allowed as it is, logged with its score as a near
// miss (classified "unsure:…") when the profile would have blocked the
// category, and never remembered. The threshold is set from the page's
// own score, so the test holds whatever the scoring becomes.
func TestContentUnsure(t *testing.T) {
	var page []byte
	var score float64
	for _, text := range []string{
		"An online casino sets its prices so that the house wins in the end.",
		"An online casino sets the odds so the house wins. Work out the expected value of one bet.",
		"Online casino free spins deposit bonus.",
	} {
		p := []byte(`<!DOCTYPE html><html><head><title>Year 10 maths: expected value</title></head><body><h1>Expected value</h1><p>` +
			text + ` Work out the expected value.</p></body></html>`)
		r, err := classify.Default().ScoreHTML(bytes.NewReader(p), 0)
		if err != nil {
			t.Fatal(err)
		}
		if s := r.Score(categories.Gambling); s > 0.2 && s < 0.95 {
			page, score = p, s
			break
		}
	}
	if page == nil {
		t.Fatal("no candidate page scores between 0.2 and 0.95 in gambling: give the test another")
	}
	threshold := score - 0.02
	if clear := classify.ClearEvidence(threshold); score >= clear {
		t.Fatalf("score %.3f is clear evidence over %.3f (%.3f)", score, threshold, clear)
	}
	up := newPageUpstream(t, map[string][]byte{"/lesson": page}, nil)
	e := newEnv(t, envConfig{requireAuth: true})
	cfg := strings.Replace(readFile(t, e.cfgPath), "  student:\n", "  student:\n    content_threshold: "+strconv.FormatFloat(threshold, 'f', 4, 64)+"\n", 1)
	writeFile(t, e.cfgPath, cfg)
	e.engine.Swap(e.build())
	alice := e.client("alice", "alicepw")
	for i := 1; i <= 2; i++ {
		resp, body := cget(t, alice, up.url("maths.test", "/lesson"))
		if resp.StatusCode != 200 || !bytes.Equal(body, page) {
			t.Fatalf("request %d: status %d, want the page as it is", i, resp.StatusCode)
		}
		if up.count("maths.test") != i {
			t.Fatalf("request %d: the page was remembered (upstream asked %d times)", i, up.count("maths.test"))
		}
	}
	lines := rawLogLines(t, e, "maths.test")
	want := "unsure:" + classify.Note(categories.Gambling, score)
	for _, l := range lines {
		if l["verdict"] != "allow" || l["classified"] != want || statusNum(l["status"]) != 200 {
			t.Fatalf("log line %v, want allowed with classified %q", l, want)
		}
		if cats, _ := l["categories"].([]any); len(cats) != 0 {
			t.Fatalf("log categories %v: an unsure page is not put in a category", cats)
		}
	}
	if n := testenv.MetricValue(e.p.content.nUnsure); n != 2 {
		t.Fatalf("unsure pages counted %v, want 2", n)
	}
	// staff's profile allows gambling: nothing to report
	if resp, _ := cget(t, e.client("bob", "bobpw"), up.url("maths2.test", "/lesson")); resp.StatusCode != 200 {
		t.Fatalf("staff: status %d", resp.StatusCode)
	}
	if l := rawLogLines(t, e, "maths2.test"); len(l) != 1 || l[0]["classified"] != nil {
		t.Fatalf("staff's line %v", l)
	}
	// and the report lists it as a near miss
	if err := e.alog.Flush(); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC()
	r, err := report.Run(report.Options{Dir: filepath.Join(e.dir, "logs"), From: today, To: today, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.NearMisses) != 1 || r.NearMisses[0].Host != "maths.test" || r.NearMisses[0].Count != 2 || "unsure:"+r.NearMisses[0].Best != want {
		t.Fatalf("report near misses %+v", r.NearMisses)
	}
}

// TestContentShapedNotRemembered: a page with clear evidence is blocked as
// served, but remembered only when the visitor cannot have shaped it: not
// with a query, not when the request's own path, Referer or cookies carry
// words of its category.
func TestContentShapedNotRemembered(t *testing.T) {
	casino := evalPage(t, "en-casino.html")
	up := newPageUpstream(t, map[string][]byte{"/": casino, "/search": casino, "/tag/online-casino": casino, "/lobby": casino, "/lobby2": casino}, nil)
	e := newEnv(t, envConfig{requireAuth: true})
	alice := e.client("alice", "alicepw")
	for _, c := range []struct {
		path     string
		hdr      []string
		shaped   float64 // the counter after
		remember bool
	}{
		{"/search?q=anything", nil, 1, false},
		{"/tag/online-casino", nil, 2, false},
		{"/lobby", []string{"Referer", "http://elsewhere.test/?q=free+spins"}, 3, false},
		{"/lobby2", []string{"Cookie", "last_search=live casino"}, 4, false},
		{"/", nil, 4, true},
	} {
		before := up.count("shaped.test")
		if resp, _ := cget(t, alice, up.url("shaped.test", c.path), c.hdr...); resp.StatusCode != 403 {
			t.Fatalf("%s: status %d, want blocked as served", c.path, resp.StatusCode)
		}
		if up.count("shaped.test") != before+1 {
			t.Fatalf("%s: decided without the page", c.path)
		}
		if n := testenv.MetricValue(e.p.content.nShaped); n != c.shaped {
			t.Fatalf("%s: not-remembered pages %v, want %v", c.path, n, c.shaped)
		}
		path, _, _ := strings.Cut(c.path, "?")
		d := e.engine.Decide(policy.Args{User: "alice", Host: "shaped.test", Path: path, Time: time.Now()})
		if remembered := d.Verdict == policy.Block; remembered != c.remember {
			t.Fatalf("%s: remembered %v, want %v (%+v)", c.path, remembered, c.remember, d)
		}
	}
}
