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
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/admin"
	"github.com/schoolgate/schoolgate/alerts"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/dnsfilter"
	"github.com/schoolgate/schoolgate/identity"
	"github.com/schoolgate/schoolgate/lists"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/policy"
	"github.com/schoolgate/schoolgate/portal"
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
	tuneMemory(logger)

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

// gateway is what serve runs: the components bound to their listeners and
// what a reload swaps.
type gateway struct {
	cfgPath string
	cfg     *config.Config // as started: listen, log and alert settings stay until a restart
	logger  *zap.Logger

	engine   *policy.Engine
	adminSrv *http.Server
	prox     *proxy.Proxy
	dnsSrv   *dnsfilter.Server
	ids      *identity.Table // who is signed in where (state_dir/identity.json)
	radius   *identity.RADIUSServer
	portal   *portal.Server // the sign-in page (portal.go), nil when off
	errc     chan error
	sd       *service // systemd's notify socket

	refresher *lists.Refresher // keeps downloaded lists current
	installMu sync.Mutex       // reloads and list refreshes install one at a time

	reloads    *prometheus.CounterVec
	lastReload prometheus.Gauge
}

func serve(cfgPath string, logger *zap.Logger) (retErr error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return fmt.Errorf("loading config: %w", err)
	}
	snap, err := policy.Build(cfg)
	if err != nil {
		return fmt.Errorf("building policy: %w", err)
	}
	runAs, err := prepareRunAs(cfg, logger)
	if err != nil {
		return err
	}
	warnOpenCAKey(cfg, logger)
	g := &gateway{cfgPath: cfgPath, cfg: cfg, logger: logger, errc: make(chan error, 3)}
	reg := g.registry()

	alerter, accessLog, closeLogs, err := g.openLogs(reg)
	if err != nil {
		return err
	}
	defer func() {
		// Lines a full disk refused at the stop are recorded for a gap
		// record at the next start; the exit status says so too.
		if err := closeLogs(); err != nil && retErr == nil {
			retErr = err
		}
	}()

	g.engine = policy.NewEngine(snap, cfg.Cache.Verdicts, reg)
	// Who is signed in where survives a restart: the table is loaded from
	// state_dir and written there as it changes (closed in shutdown).
	if g.ids, err = identity.New(identity.Options{
		Path: filepath.Join(cfg.StateDir, identity.FileName), Registerer: reg, Logger: logger.Named("identity"),
	}); err != nil {
		return err
	}
	g.refresher = lists.NewRefresher(&lists.Fetcher{}, lists.NewMetrics(reg), logger.Named("lists"), g.listsRefreshed)
	defer g.shutdown()
	if err := g.start(reg, accessLog); err != nil {
		return err
	}
	if runAs != nil {
		if err := runAs.drop(); err != nil {
			return err
		}
		logger.Info("switched user", zap.String("run_as", runAs.name), zap.Int("uid", runAs.uid))
	}
	// Background work, once the components are wired and as the user that
	// serves; stopped before they shut down and the alerter closes (defers
	// run in reverse).
	defer g.background(alerter, reg)()
	g.sd = newService(logger)
	logSnapshot(logger, snap)
	return g.run()
}

// openLogs opens the safeguarding alerter and the access log it watches
// as the log is written, and returns the function that closes both: the
// log first, so that the alerter sees its last lines. closeLogs's error is
// the log's.
func (g *gateway) openLogs(reg prometheus.Registerer) (alerter *alerts.Alerter, accessLog *logging.Writer, closeLogs func() error, err error) {
	cfg, logger := g.cfg, g.logger
	alerter, err = alerts.New(cfg.Alerts, cfg.Location, logger.Named("alerts"), reg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("starting alerts: %w", err)
	}
	closeAlerts := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := alerter.Close(ctx); err != nil {
			logger.Warn("closing alerts", zap.Error(err))
		}
	}
	accessLog, err = logging.Open(logging.Options{
		Dir: cfg.Log.Dir, Location: cfg.Location, RetentionDays: cfg.Log.RetentionDays,
		Registerer: reg, Logger: logger.Named("accesslog"), OnEntry: alerter.Observe,
		// The day's head goes out to the alert sinks, a place the gateway's
		// administrators do not control, at start, every few minutes and at
		// stop; the state folder remembers the last one for the next start.
		StateDir: cfg.StateDir, CheckpointInterval: time.Duration(cfg.Log.CheckpointMinutes) * time.Minute,
		OnCheckpoint: alerter.SendCheckpoint,
	})
	if err != nil {
		closeAlerts()
		return nil, nil, nil, err // says "opening access log" already
	}
	if alerter == nil {
		logger.Warn("log checkpoints have nowhere to go: set alerts.webhook or alerts.file, so that a copy of each day's head " +
			"is kept where the gateway's administrators cannot rewrite it")
	}
	return alerter, accessLog, func() error {
		defer closeAlerts()
		return accessLog.Close()
	}, nil
}

// background starts what runs beside the listeners — the statutory lists'
// age watch and the list refresher — and returns the function that stops
// it and waits for it.
func (g *gateway) background(alerter *alerts.Alerter, reg prometheus.Registerer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		newStatutoryWatch(g.engine, g.logger.Named("statutory"), alerter, reg).run(ctx, time.Minute)
	}()
	g.refresher.SetSources(g.cfg)
	go func() { defer wg.Done(); g.refresher.Run(ctx) }()
	return func() { cancel(); wg.Wait() }
}

// registry returns the process's metrics registry with the runtime's and
// serve's own series on it.
func (g *gateway) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	// Every series is schoolgate_ (docs/contract.md §5), the runtime's too:
	// schoolgate_go_goroutines, schoolgate_process_cpu_seconds_total.
	prometheus.WrapRegistererWithPrefix("schoolgate_", reg).MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "schoolgate_build_info", Help: "Build information; always 1.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	g.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "schoolgate_config_reloads_total", Help: "Config reloads by result (success, failure).",
	}, []string{"result"})
	g.reloads.WithLabelValues("success")
	g.reloads.WithLabelValues("failure")
	g.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "schoolgate_config_last_reload_success_timestamp_seconds", Help: "When the config in force was loaded.",
	})
	g.lastReload.SetToCurrentTime()
	reg.MustRegister(buildInfo, g.reloads, g.lastReload)
	return reg
}

// start binds every listener before anything is announced, so that a port
// in use fails the start with a clear message, and serves on them.
func (g *gateway) start(reg *prometheus.Registry, accessLog *logging.Writer) error {
	cfg, logger := g.cfg, g.logger
	fds := processFDBudget()
	fds.log(cfg, logger)
	// Transparent mode checks destinations against what the DNS filter
	// answered each client (policy.Answers: at most 128 Ki names, 1 Ki per
	// client; about 25 MB when full); without it nothing is remembered.
	var answers *policy.Answers
	if cfg.Listen.TransparentHTTP != "" || cfg.Listen.TransparentHTTPS != "" {
		answers = policy.NewAnswers(1<<17, 1<<10)
	}
	if err := g.startAdmin(reg, fds); err != nil {
		return err
	}
	portalLn, err := g.newPortal(reg, accessLog)
	if err != nil {
		return err
	}
	if err := g.startProxy(reg, accessLog, answers, fds, portalLn); err != nil {
		return err
	}
	if err := g.startDNS(reg, accessLog, answers, fds); err != nil {
		return err
	}
	return g.startRADIUS(reg)
}

// startAdmin serves the admin API (metrics, health, PAC, logon) when
// listen.admin is set.
func (g *gateway) startAdmin(reg *prometheus.Registry, fds fdBudget) error {
	cfg, logger := g.cfg, g.logger
	if cfg.Listen.Admin == "" {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Listen.Admin)
	if err != nil {
		return &listenError{"listen.admin", cfg.Listen.Admin, err}
	}
	// Idle timeout, a connection cap and admin.allow: the admin
	// listener cannot take the descriptors the proxy and DNS need.
	api, err := g.logonAPI(reg)
	if err != nil {
		ln.Close()
		return err
	}
	g.adminSrv = admin.NewServer(admin.Options{Gatherer: reg, Engine: g.engine, ProxyAddr: cfg.Listen.Proxy, Identity: api})
	ln = admin.Listen(ln, fds.admin)
	go func() { g.errc <- serveHTTP(g.adminSrv, ln) }()
	logger.Info("admin listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// startProxy builds the proxy and serves it on listen.proxy and the
// transparent listeners that are set, and the portal's listener (which
// hands its requests to the proxy).
func (g *gateway) startProxy(reg *prometheus.Registry, accessLog *logging.Writer, answers *policy.Answers, fds fdBudget, portalLn net.Listener) error {
	cfg, logger := g.cfg, g.logger
	if cfg.Listen.Proxy == "" && cfg.Listen.TransparentHTTP == "" && cfg.Listen.TransparentHTTPS == "" {
		return nil
	}
	var ln net.Listener
	if cfg.Listen.Proxy != "" {
		var err error
		if ln, err = net.Listen("tcp", cfg.Listen.Proxy); err != nil {
			return &listenError{"listen.proxy", cfg.Listen.Proxy, err}
		}
	}
	prox, err := proxy.New(proxy.Options{
		Engine: g.engine, Log: accessLog, Identity: g.ids, Registerer: reg, Answers: answers,
		Logger: logger.Named("proxy"), AdminAddr: cfg.Listen.Admin,
		PAC:              admin.PACHandler(g.engine, cfg.Listen.Proxy),
		ConnectionBudget: fds.proxy, Portal: g.proxyPortal(),
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return fmt.Errorf("starting the proxy: %w", err)
	}
	g.prox = prox
	g.servePortal(portalLn)
	if ln != nil {
		go func() { g.errc <- prox.Serve(ln) }()
		logger.Info("proxy listening", zap.String("addr", ln.Addr().String()))
	}
	// Transparent gateway mode: what the firewall redirects
	// (schoolgate firewall), decided by the same proxy.
	for _, t := range []struct {
		setting, addr string
		serve         func(net.Listener) error
	}{
		{"listen.transparent_http", cfg.Listen.TransparentHTTP, prox.ServeTransparentHTTP},
		{"listen.transparent_https", cfg.Listen.TransparentHTTPS, prox.ServeTransparentHTTPS},
	} {
		if t.addr == "" {
			continue
		}
		tln, err := net.Listen("tcp", t.addr)
		if err != nil {
			return &listenError{t.setting, t.addr, err}
		}
		go func() { g.errc <- t.serve(tln) }()
		logger.Info("transparent listening", zap.String("setting", t.setting), zap.String("addr", tln.Addr().String()))
	}
	return nil
}

// startDNS starts the DNS filter when listen.dns is set.
func (g *gateway) startDNS(reg *prometheus.Registry, accessLog *logging.Writer, answers *policy.Answers, fds fdBudget) error {
	cfg, logger := g.cfg, g.logger
	if cfg.Listen.DNS == "" {
		return nil
	}
	dnsSrv, err := dnsfilter.New(dnsfilter.Options{
		Addr: cfg.Listen.DNS, Engine: g.engine, Log: accessLog, Identity: g.ids, Answers: answers,
		Registerer: reg, Logger: logger.Named("dns"), MaxTCPConns: fds.dnsTCP, PortalListen: g.portalListen(),
	})
	if err != nil {
		return fmt.Errorf("starting the DNS filter: %w", err)
	}
	if err := dnsSrv.Start(); err != nil {
		return &listenError{"listen.dns", cfg.Listen.DNS, err}
	}
	g.dnsSrv = dnsSrv
	logger.Info("dns listening", zap.String("addr", cfg.Listen.DNS))
	return nil
}

// run serves until SIGINT or SIGTERM (nil) or a listener fails (its
// error); SIGHUP reloads.
func (g *gateway) run() error {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// "serving" only once a stop signal is a graceful stop.
	g.logger.Info("serving", zap.String("config", describeConfig(g.cfgPath)),
		zap.Int("entries", g.engine.Snapshot().DB.Len()))
	g.sd.ready("serving")
	defer g.sd.stopping()
	for {
		select {
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				g.logger.Info("stopping", zap.String("signal", sig.String()))
				return nil
			}
			g.sd.reloading()
			if err := g.reload(); err != nil {
				g.reloads.WithLabelValues("failure").Inc()
				g.logger.Error("reload refused; the previous config keeps serving", errorFields(err)...)
				g.sd.ready("serving; the last reload was refused (see the log)")
			} else {
				g.sd.ready("serving; reloaded")
			}
		case <-g.sd.watchdog():
			g.sd.alive()
		case err := <-g.errc:
			return err
		}
	}
}

// reload reads the config again and installs everything built from it.
func (g *gateway) reload() error {
	start := time.Now()
	cfg, err := loadConfig(g.cfgPath)
	if err != nil {
		return err
	}
	snap, err := g.install(cfg)
	if err != nil {
		return err
	}
	g.reloads.WithLabelValues("success").Inc()
	g.lastReload.SetToCurrentTime()
	if g.refresher != nil {
		g.refresher.SetSources(cfg)
	}
	fields := []zap.Field{zap.String("config", describeConfig(g.cfgPath)),
		zap.Int("entries", snap.DB.Len()), zap.Duration("took", time.Since(start))}
	if keys := needsRestart(g.cfg, cfg); len(keys) > 0 {
		fields = append(fields, zap.Strings("needs_restart", keys))
	}
	g.logger.Info("reloaded", fields...)
	return nil
}

// listsRefreshed rebuilds from the config in force once the refresher has
// stored new copies of downloaded lists; a failure keeps the old snapshot.
func (g *gateway) listsRefreshed() {
	start := time.Now()
	snap, err := g.install(g.engine.Snapshot().Config)
	if err != nil {
		g.logger.Error("rebuild after a list refresh refused; the previous lists keep serving", errorFields(err)...)
		return
	}
	g.logger.Info("lists swapped in", zap.Int("entries", snap.DB.Len()), zap.Duration("took", time.Since(start)))
}

// install builds everything a reload may change to the side — the policy
// snapshot (config, lists, users, classifier) and each component's
// settings derived from it (the proxy's CA and limits, the DNS filter's
// upstreams and cache) — and swaps it in only when every part was built:
// any failure leaves the old one serving whole. Reloads and list refreshes
// take turns.
func (g *gateway) install(cfg *config.Config) (*policy.Snapshot, error) {
	g.installMu.Lock()
	defer g.installMu.Unlock()
	snap, err := policy.Build(cfg)
	if err != nil {
		return nil, err
	}
	var commits []func()
	if g.prox != nil {
		c, err := g.prox.Prepare(snap)
		if err != nil {
			return nil, err
		}
		commits = append(commits, c)
	}
	if g.dnsSrv != nil {
		c, err := g.dnsSrv.Prepare(snap)
		if err != nil {
			return nil, err
		}
		commits = append(commits, c)
	}
	if g.portal != nil {
		c, err := g.portal.Prepare(snap)
		if err != nil {
			return nil, err
		}
		commits = append(commits, c)
	}
	logSnapshot(g.logger, snap)
	g.engine.Swap(snap)
	for _, commit := range commits {
		commit()
	}
	// The old database is garbage now: give its memory back to the
	// system at once, so that RSS does not grow from one refresh to the
	// next under serve's relaxed GC setting.
	debug.FreeOSMemory()
	return snap, nil
}

// shutdown stops every component, letting in-flight work finish for up
// to drainTimeout.
func (g *gateway) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if g.prox != nil {
		if err := g.prox.Shutdown(ctx); err != nil {
			g.logger.Warn("proxy shutdown", zap.Error(err))
		}
	}
	if g.portal != nil {
		g.portal.Shutdown(ctx) //nolint:errcheck // best effort on the way out
	}
	if g.dnsSrv != nil {
		if err := g.dnsSrv.Shutdown(ctx); err != nil {
			g.logger.Warn("dns shutdown", zap.Error(err))
		}
	}
	if g.adminSrv != nil {
		g.adminSrv.Shutdown(ctx) //nolint:errcheck // best effort on the way out
	}
	if g.radius != nil {
		g.radius.Close() //nolint:errcheck // on the way out
	}
	if g.ids != nil {
		g.ids.Close() // the last write of the table, once nothing changes it
	}
}

// needsRestart names the settings that differ between the config serve
// started with and a reloaded one but take effect only on a restart: the
// listeners, the access log and the alert sinks are opened once.
func needsRestart(running, reloaded *config.Config) []string {
	var keys []string
	add := func(changed bool, key string) {
		if changed {
			keys = append(keys, key)
		}
	}
	add(running.Listen.Proxy != reloaded.Listen.Proxy, "listen.proxy")
	add(running.Listen.DNS != reloaded.Listen.DNS, "listen.dns")
	add(running.Listen.Admin != reloaded.Listen.Admin, "listen.admin")
	add(running.Listen.TransparentHTTP != reloaded.Listen.TransparentHTTP, "listen.transparent_http")
	add(running.Listen.TransparentHTTPS != reloaded.Listen.TransparentHTTPS, "listen.transparent_https")
	add(running.Log.Dir != reloaded.Log.Dir, "log.dir")
	add(running.Log.RetentionDays != reloaded.Log.RetentionDays, "log.retention_days")
	add(running.Location.String() != reloaded.Location.String(), "timezone")
	add(!alertsEqual(running.Alerts, reloaded.Alerts), "alerts")
	add(running.Cache.Verdicts != reloaded.Cache.Verdicts, "cache.verdicts")
	add(running.Content.RememberHours != reloaded.Content.RememberHours, "content.remember_hours")
	add(running.RunAs != reloaded.RunAs, "run_as")
	add(running.Portal.Listen != reloaded.Portal.Listen || running.Portal.PlainHTTP() != reloaded.Portal.PlainHTTP(), "portal.listen")
	add(running.Identity.APISecretFile != reloaded.Identity.APISecretFile, "identity.api_secret_file")
	add(running.Identity.RADIUS.Listen != reloaded.Identity.RADIUS.Listen ||
		running.Identity.RADIUS.SecretFile != reloaded.Identity.RADIUS.SecretFile ||
		!slices.Equal(running.Identity.RADIUS.Clients, reloaded.Identity.RADIUS.Clients), "identity.radius")
	return keys
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
