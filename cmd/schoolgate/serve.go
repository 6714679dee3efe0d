package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/admin"
	"github.com/schoolgate/schoolgate/alerts"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/dnsfilter"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
	"github.com/schoolgate/schoolgate/proxy"
)

// drainTimeout bounds how long a graceful stop waits for in-flight work.
const drainTimeout = 15 * time.Second

func runServe(args []string, _ io.Reader, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := configFlag(fs, "config `FILE` (default: the embedded default config)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "schoolgate serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	logger := newProgramLogger(stderr)
	defer logger.Sync() //nolint:errcheck // stderr
	tuneGC()

	if err := serve(*cfgPath, logger); err != nil {
		// Config problems also go to stderr as plain FILE:LINE lines, as
		// `config check` prints them: easier to read than one JSON line.
		var ps config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps {
				fmt.Fprintln(stderr, p)
			}
		}
		var le *listenError
		if errors.As(err, &le) {
			fmt.Fprintf(stderr, "schoolgate serve: %v\n", le)
			if *cfgPath == "" {
				fmt.Fprintln(stderr, "schoolgate serve: (this is the embedded default config: copy config/default.yaml, change it, and run schoolgate serve -config FILE)")
			}
		}
		logger.Error("serve failed", errorFields(err)...)
		return 1
	}
	logger.Info("stopped")
	return 0
}

// errorFields logs err, with config problems as a list of lines.
func errorFields(err error) []zap.Field {
	var ps config.Problems
	if errors.As(err, &ps) {
		lines := make([]string, len(ps))
		for i, p := range ps {
			lines[i] = p.String()
		}
		return []zap.Field{zap.Strings("problems", lines)}
	}
	return []zap.Field{zap.Error(err)}
}

func newProgramLogger(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcoreISO8601
	core := zapcoreNew(enc, w)
	return zap.New(core)
}

// gcPercent is the collector's target unless GOGC says otherwise. The
// gateway's live heap is small (the category index is one pointer-free
// arena) while every request leaves a few KiB of garbage: collecting at 4×
// the live heap instead of 2× costs some tens of MiB and gives the CPU back
// to traffic (about a fifth more requests a second in bench/proxy).
const gcPercent = 400

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// loadConfig reads path, or the embedded default when path is "".
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Embedded(), nil
	}
	return config.Load(path)
}

func serve(cfgPath string, logger *zap.Logger) error {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return fmt.Errorf("loading config: %w", err)
	}
	snap, err := policy.Build(cfg)
	if err != nil {
		return fmt.Errorf("building policy: %w", err)
	}

	reg := prometheus.NewRegistry()
	// Every series is schoolgate_ (CONTRACT §5), the runtime's too:
	// schoolgate_go_goroutines, schoolgate_process_cpu_seconds_total.
	prometheus.WrapRegistererWithPrefix("schoolgate_", reg).MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "schoolgate_build_info", Help: "Build information; always 1.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "schoolgate_config_reloads_total", Help: "Config reloads by result (success, failure).",
	}, []string{"result"})
	reloads.WithLabelValues("success")
	reloads.WithLabelValues("failure")
	lastReload := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "schoolgate_config_last_reload_success_timestamp_seconds", Help: "When the config in force was loaded.",
	})
	lastReload.SetToCurrentTime()
	reg.MustRegister(buildInfo, reloads, lastReload)

	// Safeguarding alerts watch the access log as it is written; the
	// alerter is closed after the log so it sees the last lines.
	alerter, err := alerts.New(cfg.Alerts, cfg.Location, logger.Named("alerts"), reg)
	if err != nil {
		return fmt.Errorf("starting alerts: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := alerter.Close(ctx); err != nil {
			logger.Warn("closing alerts", zap.Error(err))
		}
	}()

	accessLog, err := logging.Open(logging.Options{
		Dir: cfg.Log.Dir, Location: cfg.Location, RetentionDays: cfg.Log.RetentionDays,
		Registerer: reg, Logger: logger.Named("accesslog"), OnEntry: alerter.Observe,
	})
	if err != nil {
		return err // says "opening access log" already
	}
	defer func() {
		if err := accessLog.Close(); err != nil {
			logger.Error("closing access log", zap.Error(err))
		}
	}()

	engine := policy.NewEngine(snap, cfg.Cache.Verdicts, reg)
	recent := policy.NewRecentUsers(15 * time.Minute)

	// Listeners are bound before anything is announced, so a port in use
	// fails the start with a clear message.
	var (
		adminSrv *http.Server
		prox     *proxy.Proxy
		dnsSrv   *dnsfilter.Server
		errc     = make(chan error, 3)
	)
	if cfg.Listen.Admin != "" {
		ln, err := net.Listen("tcp", cfg.Listen.Admin)
		if err != nil {
			return &listenError{"listen.admin", cfg.Listen.Admin, err}
		}
		adminSrv = &http.Server{
			Handler:           admin.Handler(admin.Options{Gatherer: reg, Engine: engine, ProxyAddr: cfg.Listen.Proxy}),
			ReadHeaderTimeout: 10 * time.Second,
		}
		go func() { errc <- serveHTTP(adminSrv, ln) }()
		logger.Info("admin listening", zap.String("addr", ln.Addr().String()))
	}
	if cfg.Listen.Proxy != "" {
		ln, err := net.Listen("tcp", cfg.Listen.Proxy)
		if err != nil {
			return &listenError{"listen.proxy", cfg.Listen.Proxy, err}
		}
		prox, err = proxy.New(proxy.Options{
			Engine: engine, Log: accessLog, RecentUsers: recent, Registerer: reg,
			Logger: logger.Named("proxy"), AdminAddr: cfg.Listen.Admin,
		})
		if err != nil {
			ln.Close()
			return fmt.Errorf("starting the proxy: %w", err)
		}
		go func() { errc <- prox.Serve(ln) }()
		logger.Info("proxy listening", zap.String("addr", ln.Addr().String()))
	}
	if cfg.Listen.DNS != "" {
		dnsSrv, err = dnsfilter.New(dnsfilter.Options{
			Addr: cfg.Listen.DNS, Engine: engine, Log: accessLog, RecentUsers: recent,
			Registerer: reg, Logger: logger.Named("dns"),
		})
		if err != nil {
			return fmt.Errorf("starting the DNS filter: %w", err)
		}
		if err := dnsSrv.Start(); err != nil {
			return &listenError{"listen.dns", cfg.Listen.DNS, err}
		}
		logger.Info("dns listening", zap.String("addr", cfg.Listen.DNS))
	}
	logSnapshot(logger, snap)
	logger.Info("serving", zap.String("config", describeConfig(cfgPath)),
		zap.Int("entries", snap.DB.Len()))

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	var serveErr error
loop:
	for {
		select {
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				logger.Info("stopping", zap.String("signal", sig.String()))
				break loop
			}
			// Reload: build the new snapshot to the side; on any problem the
			// old one keeps serving.
			start := time.Now()
			newCfg, err := loadConfig(cfgPath)
			if err == nil {
				var s *policy.Snapshot
				if s, err = policy.Build(newCfg); err == nil {
					logSnapshot(logger, s)
					engine.Swap(s)
					if dnsSrv != nil {
						dnsSrv.Reload()
					}
					reloads.WithLabelValues("success").Inc()
					lastReload.SetToCurrentTime()
					logger.Info("reloaded", zap.String("config", describeConfig(cfgPath)),
						zap.Int("entries", s.DB.Len()), zap.Duration("took", time.Since(start)))
					if newCfg.Log != cfg.Log || newCfg.Listen != cfg.Listen || !alertsEqual(newCfg.Alerts, cfg.Alerts) {
						logger.Warn("listen addresses, log and alert settings take effect on restart, not reload")
					}
					continue
				}
			}
			reloads.WithLabelValues("failure").Inc()
			logger.Error("reload refused; the previous config keeps serving", errorFields(err)...)
		case err := <-errc:
			serveErr = err
			break loop
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if prox != nil {
		if err := prox.Shutdown(ctx); err != nil {
			logger.Warn("proxy shutdown", zap.Error(err))
		}
	}
	if dnsSrv != nil {
		if err := dnsSrv.Shutdown(ctx); err != nil {
			logger.Warn("dns shutdown", zap.Error(err))
		}
	}
	if adminSrv != nil {
		adminSrv.Shutdown(ctx) //nolint:errcheck // best effort on the way out
	}
	return serveErr
}

func serveHTTP(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// logSnapshot tells the technician what each list contributed and what
// needs attention in a newly built snapshot.
func logSnapshot(logger *zap.Logger, s *policy.Snapshot) {
	for _, st := range s.ListStats {
		fields := []zap.Field{zap.String("source", st.Source), zap.Int("line", st.Line),
			zap.Int("added", st.Added), zap.Int("skipped", st.Skipped)}
		if st.Category != "" {
			fields = append(fields, zap.String("category", st.Category))
		}
		if len(st.SkippedExamples) > 0 {
			fields = append(fields, zap.Strings("skipped_examples", st.SkippedExamples))
		}
		logger.Info("list loaded", fields...)
	}
	for _, w := range s.Warnings {
		logger.Warn(w)
	}
}

func alertsEqual(a, b config.Alerts) bool {
	return slices.Equal(a.Categories, b.Categories) && a.Webhook == b.Webhook &&
		a.File == b.File && a.BatchSeconds == b.BatchSeconds
}

func describeConfig(path string) string {
	if path == "" {
		return "(embedded default)"
	}
	return path
}
