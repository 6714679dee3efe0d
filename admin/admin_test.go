package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/policy"
)

func testEngine(t *testing.T) *policy.Engine {
	t.Helper()
	return engineFrom(t, `timezone: UTC
listen: {proxy: "", dns: "", admin: ""}
clients: [10.0.0.0/8, 127.0.0.0/8, "fd00::/8"]
networks:
  10.20.0.0/16: staff
  192.168.7.0/24: student
default_profile: student
profiles:
  student: {default: allow}
  staff: {default: allow}
`)
}

// engineFrom is the policy engine of the config yml.
func engineFrom(t *testing.T, yml string) *policy.Engine {
	t.Helper()
	cfg, err := config.Parse([]byte(yml), "test.yaml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := policy.Compile(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return policy.NewEngine(s, 0, nil)
}

func fetch(t *testing.T, h http.Handler, path, host string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Host = host
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Result(), string(b)
}

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "schoolgate_test_total", Help: "test"})
	c.Inc()
	reg.MustRegister(c)
	eng := testEngine(t)
	h := Handler(Options{Gatherer: reg, Engine: eng, ProxyAddr: "0.0.0.0:3128"})

	t.Run("healthz", func(t *testing.T) {
		resp, body := fetch(t, h, "/healthz", "admin")
		if resp.StatusCode != 200 || strings.TrimSpace(body) != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		resp, body := fetch(t, h, "/metrics", "admin")
		if resp.StatusCode != 200 || !strings.Contains(body, "schoolgate_test_total 1") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
	for _, path := range []string{"/proxy.pac", "/wpad.dat"} {
		t.Run(path, func(t *testing.T) {
			resp, body := fetch(t, h, path, "gateway.school.example:9090")
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ns-proxy-autoconfig" {
				t.Fatalf("%d %v", resp.StatusCode, resp.Header)
			}
			for _, want := range []string{
				"function FindProxyForURL(url, host)",
				`"PROXY gateway.school.example:3128"`,
				`isInNet(host, "10.0.0.0", "255.0.0.0")`,
				`isInNet(host, "10.20.0.0", "255.255.0.0")`,
				`isInNet(host, "192.168.7.0", "255.255.255.0")`,
				"isPlainHostName(host)",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("PAC lacks %s:\n%s", want, body)
				}
			}
		})
	}
	t.Run("hostile Host header", func(t *testing.T) {
		_, body := fetch(t, h, "/proxy.pac", `evil"); alert(1); ("`)
		if strings.Contains(body, "alert") {
			t.Fatalf("Host header reached the script:\n%s", body)
		}
	})
	t.Run("fixed proxy address", func(t *testing.T) {
		h := Handler(Options{Engine: eng, ProxyAddr: "10.0.0.1:8080"})
		_, body := fetch(t, h, "/proxy.pac", "whatever")
		if !strings.Contains(body, `"PROXY 10.0.0.1:8080"`) {
			t.Fatalf("PAC:\n%s", body)
		}
	})
	t.Run("unknown path", func(t *testing.T) {
		if resp, _ := fetch(t, h, "/nope", "admin"); resp.StatusCode != 404 {
			t.Fatalf("%d", resp.StatusCode)
		}
	})
}

func TestMask(t *testing.T) {
	for bits, want := range map[int]string{0: "0.0.0.0", 8: "255.0.0.0", 12: "255.240.0.0", 32: "255.255.255.255"} {
		if got := mask4(bits); got != want {
			t.Errorf("mask4(%d) = %s, want %s", bits, got, want)
		}
	}
}
