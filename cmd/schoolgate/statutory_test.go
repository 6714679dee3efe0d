package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/alerts"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/internal/testenv"
	"github.com/schoolgate/schoolgate/policy"
)

// A statutory list older than its max_age is said in the program log, a
// metric and the alert sinks — once per copy — and still blocks.
func TestStatutoryStale(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "iwf.txt")
	if err := os.WriteFile(list, []byte("whole-site.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-30 * time.Hour)
	if err := os.Chtimes(list, old, old); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "c.yaml")
	alertsFile := filepath.Join(dir, "alerts.jsonl")
	yaml := "statutory:\n  - {name: iwf, file: iwf.txt}\nalerts: {file: alerts.jsonl, batch_seconds: 1}\ndefault_profile: p\nprofiles: {p: {}}\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	alerter, err := alerts.New(cfg.Alerts, cfg.Location, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	engine := policy.NewEngine(snap, 100, nil)
	w := newStatutoryWatch(engine, zap.NewNop(), alerter, reg)
	w.check(time.Now())
	w.check(time.Now()) // once per copy
	if age := testenv.MetricValue(w.age.WithLabelValues("iwf")); age < 29*3600 {
		t.Errorf("age metric %v, want about 30 h", age)
	}
	if m := testenv.MetricValue(w.maxAge.WithLabelValues("iwf")); m != 24*3600 {
		t.Errorf("max_age metric %v, want 24 h", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := alerter.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), `"kind":"statutory_list_stale"`); n != 1 || !strings.Contains(string(b), "statutory list iwf is") {
		t.Errorf("alerts file has %d stale notices, want 1:\n%s", n, b)
	}
	if strings.Contains(string(b), "whole-site") {
		t.Error("the notice names an entry of the list")
	}
	if d := engine.Decide(policy.Args{Host: "whole-site.example", Time: time.Now()}); d.Rule != "statutory:iwf" {
		t.Errorf("a stale list stopped blocking: %+v", d)
	}
}
