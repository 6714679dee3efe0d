package alerts

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/categories"
	"github.com/schoolgate/schoolgate/categories/classify"
	"github.com/schoolgate/schoolgate/config"
	"github.com/schoolgate/schoolgate/logging"
	"github.com/schoolgate/schoolgate/report"
)

// Defaults and bounds.
const (
	maxQuiet         = 5 * time.Second // send this soon after a burst of attempts stops
	observeQueue     = 4096            // attempts waiting for the batcher
	sinkQueue        = 256             // alerts waiting for each sink
	maxHostsPerAlert = 20
	maxURLsPerAlert  = 5
	maxBatches       = 10000 // users with attempts gathering at once
)

// Alert is what a sink receives: one user's (and device's) blocked
// attempts on alert categories over a batch.
type Alert struct {
	// Kind is "" for blocked attempts; other kinds are notices about the
	// gateway itself (Notice), e.g. "statutory_list_stale".
	Kind       string    `json:"kind,omitempty"`
	Text       string    `json:"text"` // one line for Slack/Teams-style receivers
	User       string    `json:"user"`
	IP         string    `json:"ip"`
	Profile    string    `json:"profile"`
	Categories []string  `json:"categories"`
	Hosts      []string  `json:"hosts"` // most attempted first
	URLs       []string  `json:"urls,omitempty"`
	Count      int       `json:"count"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	FollowUp   bool      `json:"follow_up"` // more attempts after an alert already sent for this user
	MoreHosts  int       `json:"more_hosts,omitempty"`
}

// attempt is what Observe copies out of a log entry.
type attempt struct {
	t                             time.Time
	user, ip, profile, host, urlS string
	cats                          categories.Set
}

type batchKey struct{ user, ip string }

type batch struct {
	key      batchKey
	profile  string
	cats     categories.Set
	hosts    map[string]int
	urls     []string
	count    int
	first    time.Time
	last     time.Time
	due      time.Time // send at the latest
	quietDue time.Time // send when no attempt came since (zero: not before due)
	followUp bool
}

// timing are the batching durations; tests shorten them.
type timing struct {
	window  time.Duration // BatchSeconds
	quiet   time.Duration // min(window, maxQuiet)
	tick    time.Duration
	backoff time.Duration // first retry delay for the webhook
	retries int           // webhook attempts per alert
	timeout time.Duration // per webhook request
}

// Alerter gathers blocked attempts on the alert categories into batched
// alerts and sends them to the configured sinks without ever blocking
// the caller. The zero of *Alerter (nil) is a valid, disabled alerter.
type Alerter struct {
	cats      categories.Set
	loc       *time.Location
	log       *zap.Logger
	tm        timing
	m         *metrics
	now       func() time.Time
	in        chan attempt
	notices   chan Alert // from Notice, sent by the loop as they come
	signins   signInWatch
	closed    atomic.Bool
	done      chan struct{} // closed by Close: the batcher flushes and stops
	loopWG    sync.WaitGroup
	sinks     []*sinkWorker
	ctx       context.Context // cancelled when Close gives up waiting
	cancel    context.CancelFunc
	once      sync.Once
	closeOnce sync.Once
	// qmu guards sending checkpoints on the sink queues against their
	// closing (qclosed).
	qmu     sync.RWMutex
	qclosed bool
}

// New returns an alerter for cfg, which config validated (categories,
// webhook URL, batch_seconds >= 1). It returns nil (a disabled alerter
// whose methods do nothing) when cfg names neither a webhook nor a file.
// With sinks but no categories, the report's incident categories are used.
func New(cfg config.Alerts, loc *time.Location, logger *zap.Logger, reg prometheus.Registerer) (*Alerter, error) {
	window := time.Duration(cfg.BatchSeconds) * time.Second
	return newAlerter(cfg, loc, logger, reg, timing{
		window: window, quiet: min(window, maxQuiet), tick: 250 * time.Millisecond,
		backoff: time.Second, retries: 6, timeout: 10 * time.Second,
	})
}

func newAlerter(cfg config.Alerts, loc *time.Location, logger *zap.Logger, reg prometheus.Registerer, tm timing) (*Alerter, error) {
	if cfg.Webhook == "" && cfg.File == "" {
		return nil, nil
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	names := cfg.Categories
	if len(names) == 0 {
		names = report.Serious
	}
	var cats categories.Set
	for _, n := range names {
		if c, ok := categories.Parse(n); ok {
			cats = cats.Add(c)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Alerter{
		cats: cats, loc: loc, log: logger, tm: tm, now: time.Now,
		in: make(chan attempt, observeQueue), notices: make(chan Alert, 16), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
	a.m = newMetrics(reg)
	if cfg.Webhook != "" {
		a.sinks = append(a.sinks, a.newSink("webhook", newWebhook(cfg.Webhook, tm)))
	}
	if cfg.File != "" {
		fs, err := openFileSink(cfg.File)
		if err != nil {
			cancel()
			return nil, err
		}
		a.sinks = append(a.sinks, a.newSink("file", fs))
	}
	for _, s := range a.sinks {
		a.m.sent.WithLabelValues(s.name)
		a.m.failures.WithLabelValues(s.name)
		a.loopWG.Add(1)
		go s.run(&a.loopWG)
	}
	a.loopWG.Add(1)
	go a.loop()
	return a, nil
}

// Observe considers one access-log entry. It is cheap and never blocks:
// only blocked entries in the alert categories are copied and queued; if
// the queue is full the attempt is dropped and counted. Safe for the
// logging writer's OnEntry hook and for concurrent use.
func (a *Alerter) Observe(e *logging.Entry) {
	if a == nil || e == nil || e.Verdict != "block" || classify.FromMemory(e.Rule) {
		return // a block from the classifier's memory of a host is not what the person asked for
	}
	if isFailedSignIn(e) {
		if !a.closed.Load() {
			a.signIn(e)
		}
		return
	}
	hit := e.Categories & a.cats
	if e.Categories.Empty() && a.cats.Has(categories.Unclassified) {
		hit = categories.SetOf(categories.Unclassified)
	}
	if hit.Empty() || a.closed.Load() {
		return
	}
	at := attempt{t: e.Time, user: e.User, ip: e.IP, profile: e.Profile, host: e.Host, urlS: e.URL, cats: hit}
	if at.t.IsZero() {
		at.t = a.now()
	}
	select {
	case a.in <- at:
	default:
		a.m.dropped.Inc()
	}
}

// SendCheckpoint queues a log checkpoint for every sink (the webhook gets
// it as a JSON POST, the file as one line). It never blocks: a full queue
// drops it, counted and logged; the checkpoint chain then shows the gap.
// Safe for the logging writer's OnCheckpoint hook.
func (a *Alerter) SendCheckpoint(cp logging.Checkpoint) {
	if a == nil {
		return
	}
	a.qmu.RLock()
	defer a.qmu.RUnlock()
	if a.qclosed {
		return
	}
	a.offer(cp, func(sink string) {
		a.log.Error("alert queue full; log checkpoint dropped", zap.String("sink", sink),
			zap.String("file", cp.File), zap.Int64("seq", cp.Seq))
	})
}

// offer hands v (an Alert or a logging.Checkpoint) to every sink without
// waiting; a sink whose queue is full drops it, counted and said by
// dropped.
func (a *Alerter) offer(v any, dropped func(sink string)) {
	for _, s := range a.sinks {
		select {
		case s.q <- v:
		default:
			a.m.dropped.Inc()
			dropped(s.name)
		}
	}
}

// Close stops taking attempts, sends every batch still gathering, and
// waits until the sinks have delivered or ctx ends (then pending alerts
// are abandoned and counted as dropped).
func (a *Alerter) Close(ctx context.Context) error {
	if a == nil {
		return nil
	}
	a.once.Do(func() {
		a.closed.Store(true)
		close(a.done)
	})
	finished := make(chan struct{})
	go func() { a.loopWG.Wait(); close(finished) }()
	var err error
	select {
	case <-finished:
	case <-ctx.Done():
		err = fmt.Errorf("alerts: closing: %w", ctx.Err())
	}
	a.cancel() // stops retries still waiting; they count as dropped
	<-finished
	a.closeOnce.Do(func() {
		for _, s := range a.sinks {
			err = errors.Join(err, s.s.close())
		}
	})
	return err
}

// loop is the batcher: it owns the batches.
func (a *Alerter) loop() {
	defer a.loopWG.Done()
	batches := map[batchKey]*batch{}
	cooldown := map[batchKey]time.Time{} // after a send: until when attempts make a follow-up
	tick := time.NewTicker(a.tm.tick)
	defer tick.Stop()
	flush := func(now time.Time, all bool) {
		for k, b := range batches {
			if all || !now.Before(b.due) || (!b.quietDue.IsZero() && !now.Before(b.quietDue)) {
				a.dispatch(b)
				delete(batches, k)
				cooldown[k] = now.Add(a.tm.window)
			}
		}
		for k, until := range cooldown {
			if now.After(until) {
				delete(cooldown, k)
			}
		}
	}
	for {
		select {
		case at := <-a.in:
			a.gather(batches, cooldown, at)
		case al := <-a.notices:
			a.queue(al)
		case <-tick.C:
			flush(a.now(), false)
		case <-a.done:
			for {
				select {
				case at := <-a.in:
					a.gather(batches, cooldown, at)
					continue
				case al := <-a.notices:
					a.queue(al)
					continue
				default:
				}
				break
			}
			flush(a.now(), true)
			a.qmu.Lock()
			a.qclosed = true
			for _, s := range a.sinks {
				close(s.q)
			}
			a.qmu.Unlock()
			return
		}
	}
}

// gather adds an attempt to its user's batch. The first attempt opens a
// batch that is sent once attempts pause for `quiet` (at most 5 s) or,
// during a retry storm, `window` after the first attempt. Attempts within
// `window` after an alert was sent gather into one follow-up alert, sent
// when that window ends.
func (a *Alerter) gather(batches map[batchKey]*batch, cooldown map[batchKey]time.Time, at attempt) {
	k := batchKey{at.user, at.ip}
	now := a.now()
	b := batches[k]
	if b == nil {
		if len(batches) >= maxBatches {
			a.m.dropped.Inc()
			return
		}
		b = &batch{key: k, hosts: map[string]int{}, first: at.t, last: at.t}
		if until, ok := cooldown[k]; ok && now.Before(until) {
			b.followUp = true
			b.due = until
		} else {
			b.due = now.Add(a.tm.window)
		}
		batches[k] = b
	}
	if !b.followUp {
		b.quietDue = now.Add(a.tm.quiet)
	}
	b.count++
	b.profile = at.profile
	b.cats |= at.cats
	if _, ok := b.hosts[at.host]; ok || len(b.hosts) < 4*maxHostsPerAlert {
		b.hosts[at.host]++
	}
	if at.urlS != "" && len(b.urls) < maxURLsPerAlert {
		dup := false
		for _, u := range b.urls {
			dup = dup || u == at.urlS
		}
		if !dup {
			b.urls = append(b.urls, at.urlS)
		}
	}
	if at.t.Before(b.first) {
		b.first = at.t
	}
	if at.t.After(b.last) {
		b.last = at.t
	}
}

// Notice sends every sink an alert of kind about the gateway itself (not
// a person's attempts), at once: text is its one line.
func (a *Alerter) Notice(kind, text string) {
	if a == nil || a.closed.Load() {
		return
	}
	now := a.now().In(a.loc)
	select {
	case a.notices <- Alert{Kind: kind, Text: text, First: now, Last: now}:
	default:
		a.m.dropped.Inc()
	}
}

// dispatch turns a batch into an alert and queues it for every sink.
func (a *Alerter) dispatch(b *batch) {
	al := Alert{User: b.key.user, IP: b.key.ip, Profile: b.profile, Categories: b.cats.Names(),
		URLs: b.urls, Count: b.count, First: b.first.In(a.loc), Last: b.last.In(a.loc), FollowUp: b.followUp}
	type hc struct {
		h string
		n int
	}
	hs := make([]hc, 0, len(b.hosts))
	for h, n := range b.hosts {
		hs = append(hs, hc{h, n})
	}
	sort.Slice(hs, func(i, j int) bool {
		if hs[i].n != hs[j].n {
			return hs[i].n > hs[j].n
		}
		return hs[i].h < hs[j].h
	})
	for i, h := range hs {
		if i == maxHostsPerAlert {
			al.MoreHosts = len(hs) - i
			break
		}
		al.Hosts = append(al.Hosts, h.h)
	}
	al.Text = summary(&al)
	a.queue(al)
}

// queue hands al to every sink; a sink whose queue is full drops it.
func (a *Alerter) queue(al Alert) {
	a.offer(al, func(sink string) {
		a.log.Warn("alert queue full; alert dropped", zap.String("sink", sink),
			zap.String("user", al.User), zap.String("ip", al.IP), zap.Int("attempts", al.Count))
	})
}

// summary is the alert's one-line text.
func summary(al *Alert) string {
	who := al.User
	if who == "" {
		who = "unknown user"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "schoolgate: %s (%s", who, al.IP)
	if al.Profile != "" {
		fmt.Fprintf(&b, ", %s", al.Profile)
	}
	b.WriteString(") — ")
	if al.FollowUp {
		b.WriteString("a further ")
	}
	if al.Count == 1 {
		b.WriteString("1 blocked attempt")
	} else {
		fmt.Fprintf(&b, "%d blocked attempts", al.Count)
	}
	fmt.Fprintf(&b, " on %s: %s", strings.Join(al.Categories, ", "), strings.Join(al.Hosts, ", "))
	if al.MoreHosts > 0 {
		fmt.Fprintf(&b, " and %d more sites", al.MoreHosts)
	}
	if al.Last.Sub(al.First) >= time.Minute {
		fmt.Fprintf(&b, ", %s–%s", al.First.Format("15:04"), al.Last.Format("15:04 MST"))
	} else {
		fmt.Fprintf(&b, ", %s", al.First.Format("15:04 MST"))
	}
	return b.String()
}
