// Package deploy holds the files an operator installs beside the binary
// (Grafana dashboard, Prometheus alert rules); its tests keep them valid
// and in step with the metrics the code exports.
package deploy

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// exported collects every schoolgate_ metric name written in the
// project's non-test Go sources.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`"(schoolgate_[a-z0-9_]+)"`)
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The Go runtime and process series, registered by serve under the
	// schoolgate_ prefix: gather the real collectors for their names.
	reg := prometheus.NewRegistry()
	prometheus.WrapRegistererWithPrefix("schoolgate_", reg).MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	return names
}

var metricRef = regexp.MustCompile(`\bschoolgate_[a-z0-9_]+`)

// checkRefs reports metric names in text that no code exports (a
// histogram's _bucket, _count and _sum series count as its name).
func checkRefs(t *testing.T, what, text string, names map[string]bool) {
	t.Helper()
	var missing []string
	seen := map[string]bool{}
	for _, ref := range metricRef.FindAllString(text, -1) {
		base := ref
		for _, suf := range []string{"_bucket", "_count", "_sum"} {
			if strings.HasSuffix(ref, suf) && names[strings.TrimSuffix(ref, suf)] {
				base = strings.TrimSuffix(ref, suf)
			}
		}
		if !names[base] && !seen[ref] {
			missing = append(missing, ref)
			seen[ref] = true
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s names metrics that the code does not export: %s", what, strings.Join(missing, ", "))
	}
}

func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/schoolgate.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Error("dashboard lacks a title or uid")
	}
	ids := map[int]bool{}
	exprs := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs++
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q: unbalanced expression %q", p.Title, tg.Expr)
			}
		}
	}
	if exprs < 20 {
		t.Errorf("only %d queries in the dashboard", exprs)
	}
	checkRefs(t, "the dashboard", string(b), exported(t))
}

func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	checkRefs(t, "alerts.yml", string(b), exported(t))

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus)")
	}
	out, err := exec.Command(promtool, "check", "rules", "prometheus/alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	cmd := exec.Command(promtool, "test", "rules", "alerts_test.yml")
	cmd.Dir = "prometheus"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
