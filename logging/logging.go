package logging

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/categories"
)

// Entry is one access-log event; see docs/contract.md §4 for the fields.
type Entry struct {
	Time       time.Time
	Src        string // "proxy" or "dns"
	User       string
	IP         string
	Profile    string
	Method     string // HTTP method, "CONNECT", or DNS qtype
	Host       string
	URL        string
	Categories categories.Set
	Verdict    string // "allow" or "block"
	Rule       string
	HTTPStatus int    // for src proxy: written as the number in `status`
	Rcode      string // for src dns: written as the name in `status`
	Bytes      int64
	Duration   time.Duration // written as `ms`
	// Classified is the content classifier's note when it, not a list,
	// gave Categories ("gambling=0.83", "host:gambling=0.78"). Written as
	// `classified` after `ms`, only when set, so lines without it are
	// unchanged; the hash chain covers it like any field.
	Classified string
	// Ended says why a session's line was written before the session
	// ended: "crash" for a tunnel, WebSocket or download that was open
	// when the gateway died (written at the next start from the session
	// journal, with the bytes counted until then). Empty otherwise.
	Ended string
	// SafeSearch reports that an engine's SafeSearch lock was applied
	// (policy.SafeSearch): written as `"safe_search":true` after
	// `classified` (and `ended`), only when set.
	SafeSearch bool
	// Mode is how the request reached the proxy when not as an explicit
	// proxy request: "transparent" for traffic the gateway's firewall
	// redirected (proxy.ServeTransparentHTTP/HTTPS). Written as `mode`
	// after `safe_search`, only when set.
	Mode string
	// AuthFailed marks a refused proxy sign-in (credentials sent, wrong):
	// written as `"auth":"failed"` after `mode`, only when set;
	// User is then the name that was tried.
	AuthFailed bool
	// Lost and Note are set on the writer's own records (Src "log"): a gap
	// record (Rule "gap") names how many lines could not be written, and
	// a checkpoint mismatch (Rule "checkpoint_mismatch") says how the
	// log's end differs from the last checkpoint sent.
	Lost int64
	Note string

	sid uint64 // the Session this entry ends, if any
}

// SrcLog is the Src of the writer's own records (gaps, mismatches).
const SrcLog = "log"

// Defaults for the Options left zero.
const (
	DefaultQueueSize   = 16384
	DefaultMaxBuffered = 64 << 20
	maxFlushInterval   = time.Second
	flushSize          = 64 << 10 // write out once this much is buffered
	// Log wakes the writer when this many entries are queued; fewer
	// wait for the next drainInterval. Waking per entry cost more CPU
	// than encoding it; 128 lines are encoded in about 0.15 ms.
	wakeBatch     = 128
	drainInterval = 50 * time.Millisecond // how late OnEntry may see an entry
)

// Options configures a Writer.
type Options struct {
	Dir           string
	Location      *time.Location // the config's timezone: names the daily files
	RetentionDays int            // files older than this are deleted; 0 keeps all
	Registerer    prometheus.Registerer
	Logger        *zap.Logger      // the program's own log, for trouble with writing
	Now           func() time.Time // called by Log too: safe for concurrent use

	// OnEntry, if set, is called on the writer goroutine with every entry
	// once its line is chained and buffered (it reaches the disk within
	// FlushInterval), within about 50 ms of Log. It must be quick and
	// must not block: the writer waits for it; and it must not call the Writer's Log, Flush or Close
	// (they would wait for the writer, which waits for it). The pointer
	// is only valid during the call; copy the entry to keep it. A panic in
	// it is recovered and logged.
	OnEntry func(*Entry)

	// QueueSize is how many entries may wait for the writer goroutine
	// before Log blocks (default DefaultQueueSize).
	QueueSize int
	// MaxBuffered bounds the bytes of lines held in memory while the disk
	// refuses writes (default DefaultMaxBuffered); past it lines are
	// dropped and counted.
	MaxBuffered int
	// FlushInterval is how often buffered lines are written and synced;
	// default and maximum one second.
	FlushInterval time.Duration

	// Checkpoints (checkpoint.go). StateDir keeps the last checkpoint
	// sent, for the comparison at the next Open; OnCheckpoint receives
	// each one on the writer goroutine (it must not block). Checkpoints
	// are made at Open, every CheckpointInterval (0: only at Open and
	// Close) and at Close, when either of StateDir and OnCheckpoint is set.
	StateDir           string
	CheckpointInterval time.Duration
	OnCheckpoint       func(Checkpoint)
}

// Writer is the access-log writer. Log may be called from many goroutines;
// one writer goroutine encodes, chains and writes the lines.
type Writer struct {
	lock *os.File // the log folder's lock (lockDir), held until Close
	o    Options
	log  *zap.Logger
	m    *metrics

	// The queue: Log appends a copy of the entry under qmu; the writer
	// takes the whole batch at once and hands back the previous one's
	// array (spare) for reuse, so a line costs one copy and no
	// allocation. The writer is woken once per wakeAt entries, not per
	// entry; the rest is collected every drainInterval.
	qmu     sync.Mutex
	room    sync.Cond // signalled when the writer empties the queue
	queue   []Entry
	spare   []Entry
	waiters int  // Logs waiting for room
	closed  bool // set by Close: later Logs are dropped and counted
	wakeAt  int
	wake    chan struct{} // one pending wake-up at most
	flushc  chan chan error
	done    chan struct{}
	err     error // from the final flush, read after done

	errLimit, dropLimit rateLimit

	// Lines lost since the last gap record (gap.go), and the marker
	// that carries them over a stop.
	gapMu  sync.Mutex
	gap    gapState
	marker *os.File

	// Open sessions (session.go), journaled every second.
	smu              sync.Mutex
	sessions         map[uint64]*Session
	nextSID          uint64
	lastJournalEmpty bool   // owned by the writer goroutine
	journalGen       uint64 // the journal last computed; owned by the writer goroutine
	// jmu serialises the journal's writes (the writer at a Flush, the
	// syncer after a sync); journalWritten is the generation on disk, so
	// that a journal computed earlier never replaces a newer one.
	jmu            sync.Mutex
	journalWritten uint64

	// Checkpoints, owned by the writer goroutine: the heads of files
	// closed since the last checkpoint, the last one sent, the next due.
	cpPending map[string]head
	lastCP    *Checkpoint
	cpDue     time.Time

	// Compression of days older than a week runs beside the writer, at
	// Open and once a day; Close stops it and waits.
	compressing  bool // owned by the writer goroutine (and Open)
	compressDone chan struct{}
	stopCompress chan struct{}

	// fsync is slow when the disk is busy, so the syncer goroutine does it
	// (and rewrites the sidecar), not the writer goroutine that must keep
	// draining the queue. syncMu is held while a file is synced; the
	// writer takes it to sync and close a file it is done with.
	syncc      chan syncReq
	syncMu     sync.Mutex
	syncerDone chan struct{}

	// Owned by the writer goroutine (and by Open before it starts).
	le            *lineEncoder
	smallBatches  int // drains in a row that used little of the queue's array
	cur           *dayFile
	stuck         []*dayFile // earlier days whose lines could not all be written yet
	buffered      int        // bytes of lines (and waiting entries) held in memory
	retentionDone time.Time  // local date retention last ran
}

// logFile is what the writer needs of an open log file.
type logFile interface {
	Write([]byte) (int, error)
	Sync() error
	Close() error
}

// wrapFile lets tests put a failing file in the writer's way.
var wrapFile = func(f *os.File) logFile { return f }

// dayFile is one day's log file and its chain state.
type dayFile struct {
	date    time.Time // local midnight starting the day
	next    time.Time // the next day's midnight (not always 24 h later)
	path    string
	f       logFile // nil while the file cannot be opened
	seq     int64   // seq of the last line chained
	hash    [hashHex]byte
	pending []byte // whole lines not yet written to f
	dirty   bool   // written since the last sync was handed to the syncer
	failing bool   // the last write failed
	handed  int64  // seq of the last sync handed to the syncer
	// Guarded by Writer.syncMu (the syncer goroutine reads them).
	closed  bool  // f is closed: a sync request still queued for it is void
	cpSeq   int64 // seq of the last checkpoint sent for it (writer goroutine)
	cpSent  bool
	tipSeq  int64   // seq recorded in the .tip sidecar
	waiting []Entry // entries that arrived while f could not be opened
}

func newDayFile(dir string, d time.Time) *dayFile {
	y, m, dd := d.Date()
	return &dayFile{date: d, next: time.Date(y, m, dd+1, 0, 0, 0, 0, d.Location()), path: PathFor(dir, d)}
}

func (d *dayFile) prev() []byte {
	if d.seq == 0 {
		return nil
	}
	return d.hash[:]
}

// Open opens (or continues) today's file in o.Dir, deletes files past
// retention and starts the writer goroutine.
func Open(o Options) (*Writer, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	w := newWriter(o)
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("opening access log: %w", err)
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("opening access log: %w", err)
	}
	w.lock = lock
	now := o.Now()
	w.retention(now)
	df := newDayFile(o.Dir, day(now, o.Location))
	if err := w.open(df); err != nil {
		w.abandon()
		return nil, fmt.Errorf("opening access log: %w", err)
	}
	if err := w.m.register(o.Registerer); err != nil {
		_ = df.f.Close()
		w.abandon()
		return nil, err
	}
	w.cur = df
	w.resume()
	w.checkpoint(CheckpointStart, true)
	w.cpDue = now.Add(o.CheckpointInterval)
	w.log.Info("access log open", zap.String("file", df.path), zap.Int64("continuing_after_line", df.seq))
	go w.syncer()
	go w.run()
	return w, nil
}

// setDefaults fills the options left out and refuses the impossible.
func (o *Options) setDefaults() error {
	if o.Dir == "" {
		return errors.New("opening access log: no log directory given")
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxBuffered <= 0 {
		o.MaxBuffered = DefaultMaxBuffered
	}
	if o.FlushInterval <= 0 || o.FlushInterval > maxFlushInterval {
		o.FlushInterval = maxFlushInterval
	}
	if o.RetentionDays < 0 {
		return fmt.Errorf("opening access log: retention days %d is negative", o.RetentionDays)
	}
	return nil
}

// newWriter is a Writer for o, with nothing opened yet.
func newWriter(o Options) *Writer {
	w := &Writer{
		o:      o,
		log:    o.Logger,
		wakeAt: min(wakeBatch, o.QueueSize),
		wake:   make(chan struct{}, 1),
		flushc: make(chan chan error),
		done:   make(chan struct{}),
		le:     newLineEncoder(),
		syncc:  make(chan syncReq, 1),

		sessions:     make(map[uint64]*Session),
		stopCompress: make(chan struct{}),
		cpPending:    make(map[string]head),

		syncerDone: make(chan struct{}),
	}
	w.room.L = &w.qmu
	w.m = newMetrics(w.queueLen)
	return w
}

// resume takes up what the previous run left: its last checkpoint (to
// check the log's end against), the lines a full disk refused at its stop
// (the gap marker), and the sessions it left open (the journal).
func (w *Writer) resume() {
	o := w.o
	if o.StateDir != "" {
		cp, err := loadCheckpoint(o.StateDir)
		if err != nil {
			w.log.Error("checkpoint mismatch: the last checkpoint sent cannot be read; the log's end cannot be checked against it",
				zap.String("state_dir", o.StateDir), zap.Error(err))
		}
		w.lastCP = cp
		w.checkLastCheckpoint()
	}
	mb, merr := w.openMarker()
	if merr != nil {
		w.log.Error("access log: cannot allocate the gap marker; lines a full disk refuses at a stop could go unrecorded",
			zap.String("dir", o.Dir), zap.Error(merr))
	}
	w.replayMarker(mb)
	w.replayJournal()
}

// Log records e. It copies e, so the caller may reuse it once Log
// returns. It does no disk I/O: the entry is queued for the writer
// goroutine. If the queue is full Log waits (counted in
// schoolgate_logging_queue_full_total) rather than drop the line. An entry
// with a zero Time is stamped with the current time. Log on a nil Writer
// does nothing; after Close the entry is counted as dropped.
func (w *Writer) Log(e *Entry) {
	if w == nil || e == nil {
		return
	}
	t := e.Time
	if t.IsZero() {
		t = w.o.Now()
	}
	w.qmu.Lock()
	if w.closed {
		w.qmu.Unlock()
		w.drop(1, "logged after the access log was closed")
		return
	}
	waited := false
	if len(w.queue) >= w.o.QueueSize {
		w.m.queueFull.Inc()
		waited = true
		w.waiters++
		for len(w.queue) >= w.o.QueueSize {
			w.signal()
			w.room.Wait()
		}
		w.waiters--
	}
	if len(w.queue) == cap(w.queue) {
		// Double (append grows big slices by a quarter at a time).
		w.queue = slices.Grow(w.queue, min(max(len(w.queue), wakeBatch), w.o.QueueSize-len(w.queue)))
	}
	w.queue = append(w.queue, *e)
	n := len(w.queue)
	w.queue[n-1].Time = t
	w.qmu.Unlock()
	if n == w.wakeAt || waited {
		w.signal()
	}
}

// signal wakes the writer goroutine unless a wake-up is pending already.
func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Writer) queueLen() float64 {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	return float64(len(w.queue))
}

// Flush writes out and syncs every entry logged before the call. The
// writer does this by itself at least every second; Flush is for tests
// and for callers that must see the lines on disk now.
func (w *Writer) Flush() error {
	w.qmu.Lock()
	closed := w.closed
	w.qmu.Unlock()
	if closed {
		return errors.New("flushing access log: closed")
	}
	reply := make(chan error, 1)
	select {
	case w.flushc <- reply:
	case <-w.done:
		return errors.New("flushing access log: closed")
	}
	return <-reply
}

// Close writes out everything logged, syncs and closes the files. It
// returns an error if some lines could not be written (they are counted in
// schoolgate_logging_dropped_lines_total). Close may be called more than
// once.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	w.qmu.Lock()
	w.closed = true
	w.qmu.Unlock()
	w.signal()
	<-w.done
	w.unlock()
	return w.err
}

// abandon undoes a failed Open: stops the compression it started and
// lets the folder go.
func (w *Writer) abandon() {
	close(w.stopCompress)
	if w.compressDone != nil {
		<-w.compressDone
	}
	w.unlock()
}

// unlock lets another process write to the folder.
func (w *Writer) unlock() {
	if w.lock != nil {
		_ = w.lock.Close()
		w.lock = nil
	}
}

// run is the writer goroutine.
func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTicker(w.o.FlushInterval)
	defer t.Stop()
	d := time.NewTicker(min(drainInterval, w.o.FlushInterval))
	defer d.Stop()
	for {
		var finished bool
		select {
		case <-w.wake:
			finished = w.drain()
		case <-d.C:
			finished = w.drain()
		case reply := <-w.flushc:
			// Everything logged before Flush was called is in the queue.
			finished = w.drain()
			reply <- w.tick(true)
		case <-t.C:
			finished = w.drain()
			w.tick(false)
		}
		if finished {
			w.err = w.shutdown()
			return
		}
	}
}

// drain chains and buffers the queued entries. It reports whether the
// writer is closed and every entry logged is handled.
func (w *Writer) drain() (finished bool) {
	for {
		w.qmu.Lock()
		batch := w.queue
		w.queue = w.spare[:0]
		w.spare = nil
		closed, waiters := w.closed, w.waiters
		if waiters > 0 {
			w.room.Broadcast()
		}
		w.qmu.Unlock()
		for i := range batch {
			w.handle(&batch[i])
		}
		n := len(batch)
		clear(batch) // let go of the callers' strings
		// Give back what a backlog grew once batches have been small
		// for a while (a second or more), not between two bursts.
		if cap(batch) > 8*wakeBatch && n < cap(batch)/8 {
			w.smallBatches++
			if w.smallBatches > 40 {
				batch, w.smallBatches = nil, 0
			}
		} else {
			w.smallBatches = 0
		}
		w.qmu.Lock()
		w.spare = batch
		w.qmu.Unlock()
		switch {
		case !closed:
			return false
		case n == 0 && waiters == 0:
			return true
		case n == 0:
			// Logs that waited for room before Close still append;
			// each signals when it has.
			return false
		}
		// Closed: go on until nothing is left.
	}
}

// handle chains and buffers one entry.
func (w *Writer) handle(e *Entry) {
	if e.Time.IsZero() {
		e.Time = w.o.Now()
	}
	if c := w.cur; c == nil || e.Time.Before(c.date) || !e.Time.Before(c.next) {
		w.switchTo(day(e.Time, w.o.Location))
	}
	df := w.cur
	if df.f == nil {
		// The file cannot be opened, so the chain cannot be continued:
		// keep the entry itself until the file opens.
		if w.buffered+entrySize(e) > w.o.MaxBuffered {
			w.drop(1, "the access log file cannot be opened and the retry buffer is full")
		} else {
			df.waiting = append(df.waiting, *e)
			w.buffered += entrySize(e)
		}
	} else {
		w.encode(df, e)
		if len(df.pending) >= flushSize && !df.failing {
			// After a failure, retries wait for the next tick.
			_ = w.write(df)
		}
	}
	w.onEntry(e)
	if e.sid != 0 {
		w.ended(e.sid)
	}
}

func (w *Writer) onEntry(e *Entry) {
	if w.o.OnEntry == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			w.log.Error("access log: OnEntry panicked", zap.Any("panic", r))
		}
	}()
	w.o.OnEntry(e)
}

// encode appends e's chained line to df's pending lines.
func (w *Writer) encode(df *dayFile, e *Entry) {
	if w.buffered >= w.o.MaxBuffered {
		w.drop(1, "writes to the access log keep failing and the retry buffer is full")
		return
	}
	before := len(df.pending)
	pending, sum := w.le.appendLine(df.pending, e, df.seq+1, df.prev())
	df.pending = pending
	df.seq++
	df.hash = sum
	n := len(pending) - before
	w.buffered += n
	w.m.lines.Inc()
	w.m.bytes.Add(float64(n))
}

// entrySize is roughly the memory an entry waiting for its file holds.
func entrySize(e *Entry) int {
	return 200 + len(e.User) + len(e.IP) + len(e.Profile) + len(e.Method) + len(e.Host) + len(e.URL) + len(e.Rule) + len(e.Classified)
}

// write writes df's pending lines. On error the unwritten lines stay
// pending for the next try.
func (w *Writer) write(df *dayFile) error {
	if len(df.pending) == 0 {
		return nil
	}
	n, err := df.f.Write(df.pending)
	if n > 0 {
		df.dirty = true
		w.buffered -= n
		df.pending = df.pending[:copy(df.pending, df.pending[n:])]
	}
	df.failing = err != nil
	if err != nil {
		w.writeError("writing", df.path, err)
		return err
	}
	if cap(df.pending) > 4*flushSize {
		df.pending = nil // give back what a backlog grew
	}
	return nil
}

// syncReq asks the syncer to make a file durable up to line seq.
type syncReq struct {
	df   *dayFile
	f    logFile
	seq  int64
	hash [hashHex]byte
	// journal, if not nil, replaces the session journal once the file is
	// synced: it never names a session whose line was not made durable.
	journal    []byte
	journalGen uint64
}

// syncer is the goroutine that fsyncs files and rewrites their sidecars.
func (w *Writer) syncer() {
	defer close(w.syncerDone)
	for r := range w.syncc {
		w.syncMu.Lock()
		err := w.syncLocked(r.df, r.f, r.seq, r.hash)
		w.syncMu.Unlock()
		if err == nil && r.journal != nil {
			if err := w.writeJournal(r.journal, r.journalGen); err != nil {
				w.writeError("writing the session journal in", w.o.Dir, err)
			}
		}
	}
}

// syncLocked makes f durable, then records line seq in the sidecar, so
// the sidecar never names a line the file may lose. w.syncMu is held.
func (w *Writer) syncLocked(df *dayFile, f logFile, seq int64, hash [hashHex]byte) error {
	if df.closed {
		return nil // done with by the writer, which synced it itself
	}
	start := time.Now()
	if err := f.Sync(); err != nil {
		w.writeError("syncing", df.path, err)
		return err
	}
	if seq > 0 && seq > df.tipSeq {
		if err := writeTip(df.path, seq, hash); err != nil {
			w.writeError("writing the tip sidecar of", df.path, err)
			return err
		}
		df.tipSeq = seq
	}
	w.m.flush.Observe(time.Since(start).Seconds())
	return nil
}

// syncLater hands df to the syncer if it has lines written since the
// last hand-over. If the syncer is still busy with the previous one, the
// next tick tries again.
func (w *Writer) syncLater(df *dayFile, j []byte, jEmpty bool) {
	if !df.dirty && df.handed == df.seq && j == nil {
		return
	}
	select {
	case w.syncc <- syncReq{df: df, f: df.f, seq: df.seq, hash: df.hash, journal: j, journalGen: w.journalGen}:
		df.dirty, df.handed = false, df.seq
		if j != nil {
			w.lastJournalEmpty = jEmpty
		}
	default:
	}
}

// syncNow syncs df on the writer goroutine, waiting for the syncer.
func (w *Writer) syncNow(df *dayFile) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if err := w.syncLocked(df, df.f, df.seq, df.hash); err != nil {
		return err
	}
	df.dirty, df.handed = false, df.seq
	return nil
}

// service opens df if it is not open yet and writes its pending lines;
// on error what is left stays in memory for the next try.
func (w *Writer) service(df *dayFile) error {
	if df.f == nil {
		if err := w.open(df); err != nil {
			return err
		}
	}
	return w.write(df)
}

// tick runs every FlushInterval, and on Flush (now set: sync before
// returning): writes out the current file and has it synced, retries
// earlier days that failed, and runs retention once a day.
func (w *Writer) tick(now bool) error {
	var firstErr error
	keep := w.stuck[:0]
	for _, df := range w.stuck {
		if err := w.finish(df); err != nil {
			keep = append(keep, df)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	clear(w.stuck[len(keep):])
	w.stuck = keep
	if df := w.cur; df != nil {
		err := w.service(df)
		j, jEmpty := w.journal(w.o.Now())
		switch {
		case err != nil:
		case now:
			if err = w.syncNow(df); err == nil && j != nil {
				if err = w.writeJournal(j, w.journalGen); err != nil {
					w.writeError("writing the session journal in", w.o.Dir, err)
				} else {
					w.lastJournalEmpty = jEmpty
				}
			}
		default:
			w.syncLater(df, j, jEmpty)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if err == nil {
			w.recordGap()
		}
	}
	if t := w.o.Now(); w.o.CheckpointInterval > 0 && !t.Before(w.cpDue) {
		w.checkpoint(CheckpointInterval, false)
		w.cpDue = t.Add(w.o.CheckpointInterval)
	}
	w.retention(w.o.Now())
	return firstErr
}

// finish writes, syncs and closes df.
func (w *Writer) finish(df *dayFile) error {
	if df.f == nil && len(df.waiting) == 0 {
		return nil
	}
	if err := w.service(df); err != nil {
		return err
	}
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	if err := w.syncLocked(df, df.f, df.seq, df.hash); err != nil {
		return err
	}
	df.closed = true
	if err := df.f.Close(); err != nil {
		w.writeError("closing", df.path, err)
	}
	df.f = nil
	w.noteFinished(df)
	return nil
}

// switchTo makes the file of local date d the current one.
func (w *Writer) switchTo(d time.Time) {
	if old := w.cur; old != nil {
		w.cur = nil
		if err := w.finish(old); err != nil {
			w.stuck = append(w.stuck, old)
		}
	}
	for i, df := range w.stuck {
		if df.date.Equal(d) {
			w.cur = df
			w.stuck = append(w.stuck[:i], w.stuck[i+1:]...)
			return
		}
	}
	df := newDayFile(w.o.Dir, d)
	_ = w.open(df) // counted and logged; entries wait for it
	w.cur = df
}

// shutdown runs once the queue is closed and drained.
func (w *Writer) shutdown() error {
	var errs []error
	close(w.stopCompress)
	if w.compressDone != nil {
		<-w.compressDone
	}
	w.closeSessions()
	files := append(w.stuck, w.cur)
	w.stuck, w.cur = nil, nil
	for _, df := range files {
		if df == nil {
			continue
		}
		if err := w.finish(df); err != nil {
			lost := len(df.waiting)
			for _, c := range df.pending {
				if c == '\n' {
					lost++
				}
			}
			if lost > 0 {
				w.drop(lost, "the access log could not be written before closing")
				err = fmt.Errorf("%d lines not written: %w", lost, err)
			}
			errs = append(errs, fmt.Errorf("closing access log %s: %w", df.path, err))
			if df.f != nil {
				w.syncMu.Lock()
				df.closed = true
				_ = df.f.Close()
				w.syncMu.Unlock()
			}
		}
	}
	w.checkpoint(CheckpointStop, true)
	close(w.syncc)
	<-w.syncerDone
	if len(errs) == 0 {
		// Every session's line is written: nothing is open any more.
		if err := os.Remove(filepath.Join(w.o.Dir, JournalName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing the session journal: %w", err))
		}
	}
	if err := w.saveMarker(); err != nil {
		errs = append(errs, err)
	}
	if w.marker != nil {
		_ = w.marker.Close()
	}
	return errors.Join(errs...)
}

// retention deletes expired files once per local day.
func (w *Writer) retention(now time.Time) {
	today := day(now, w.o.Location)
	if today.Equal(w.retentionDone) {
		return
	}
	w.retentionDone = today
	// Compression reads what retention leaves: it starts after.
	defer w.compressLater(today)
	if w.o.RetentionDays == 0 {
		return
	}
	removed, err := removeExpired(w.o.Dir, today, w.o.RetentionDays, w.o.Location)
	if len(removed) > 0 {
		w.log.Info("access log: deleted files past retention",
			zap.Int("retention_days", w.o.RetentionDays), zap.Strings("files", removed))
	}
	if err != nil {
		w.log.Error("access log: deleting files past retention", zap.Error(err))
	}
}

// open opens df's file for appending, continuing its chain if it has
// lines, and then chains any entries that waited for it.
func (w *Writer) open(df *dayFile) error {
	if err := os.MkdirAll(filepath.Dir(df.path), 0o750); err != nil {
		w.writeError("creating the directory of", df.path, err)
		return err
	}
	f, st, err := w.openTail(df)
	if err != nil {
		w.writeError("opening", df.path, err)
		return err
	}
	df.f, df.seq, df.hash = wrapFile(f), st.seq, st.hash
	w.syncMu.Lock()
	df.tipSeq = -1 // rewrite the sidecar at the first sync
	w.syncMu.Unlock()
	if st.created {
		syncDir(filepath.Dir(df.path))
	}
	tip, terr := readTip(TipPath(df.path))
	if terr != nil && !errors.Is(terr, fs.ErrNotExist) {
		// The sidecar is what shows lines cut from the end: a damaged one
		// is kept aside as evidence, never silently rewritten, and `logs
		// verify` fails the day while it is there.
		aside := TipPath(df.path) + ".damaged-" + w.o.Now().UTC().Format("20060102T150405.000")
		if rerr := os.Rename(TipPath(df.path), aside); rerr != nil {
			return fmt.Errorf("setting aside the damaged sidecar of %s: %w", df.path, rerr)
		}
		w.log.Error("access log: the .tip sidecar is damaged; kept it aside, and lines cut from the end before now cannot be ruled out",
			zap.String("file", df.path), zap.String("set_aside_as", aside), zap.Error(terr))
	}
	if terr == nil && (tip.seq > st.seq || tip.seq == st.seq && tip.hash != st.hash) {
		// Lines the writer made durable are gone from the end (or the
		// last one changed) since it last ran. Chaining on from what the
		// sidecar recorded, not from what is left, keeps the gap visible
		// to Verify at the first line written from now on.
		w.log.Error("access log: lines are missing from the end of the file since the writer last recorded it; the gap stays visible to logs verify",
			zap.String("file", df.path), zap.Int64("recorded_lines", tip.seq), zap.Int64("lines_left", st.seq))
		df.seq, df.hash = tip.seq, tip.hash
	}
	waiting := df.waiting
	df.waiting = nil
	for i := range waiting {
		w.buffered -= entrySize(&waiting[i])
		w.encode(df, &waiting[i])
	}
	return nil
}

type tailState struct {
	seq     int64
	hash    [hashHex]byte
	created bool
}

// openTail opens the file and reads the seq and hash of its last
// complete line. A partial last line (a crash mid-write) is cut off so the
// chain stays verifiable; a file whose end cannot be read as a line of
// ours is set aside as .damaged-TIME and a new chain started.
func (w *Writer) openTail(df *dayFile) (*os.File, tailState, error) {
	for attempt := 0; ; attempt++ {
		_, statErr := os.Stat(df.path)
		f, err := os.OpenFile(df.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, tailState{}, err
		}
		st := tailState{created: os.IsNotExist(statErr)}
		seq, sum, cut, err := readTail(f)
		if err == nil {
			if cut > 0 {
				w.log.Warn("access log: cut an incomplete last line left by a crash",
					zap.String("file", df.path), zap.Int64("bytes", cut))
			}
			st.seq, st.hash = seq, sum
			return f, st, nil
		}
		_ = f.Close()
		var dmg *damagedError
		if !errors.As(err, &dmg) || attempt > 0 {
			return nil, tailState{}, err
		}
		aside := df.path + ".damaged-" + w.o.Now().UTC().Format("20060102T150405.000")
		if rerr := os.Rename(df.path, aside); rerr != nil {
			return nil, tailState{}, fmt.Errorf("setting aside damaged %s: %w", df.path, rerr)
		}
		_ = os.Rename(TipPath(df.path), aside+TipSuffix)
		w.log.Error("access log: the end of the file is not a chained line; set it aside and started a new chain",
			zap.String("file", df.path), zap.String("set_aside_as", aside), zap.String("problem", dmg.msg))
	}
}

// syncDir makes a new file's directory entry durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

func (w *Writer) writeError(action, path string, err error) {
	w.m.writeErrors.Inc()
	if ok, suppressed := w.errLimit.allow(10 * time.Second); ok {
		w.log.Error("access log: "+action+" the file failed; lines are kept in memory and retried",
			zap.String("file", path), zap.Error(err), zap.Int("similar_errors_not_logged", suppressed))
	}
}

func (w *Writer) drop(n int, why string) {
	if n <= 0 {
		return
	}
	w.m.dropped.Add(float64(n))
	w.noteLost(n, "")
	if ok, suppressed := w.dropLimit.allow(time.Second); ok {
		w.log.Error("access log: DROPPING LINES: "+why,
			zap.Int("lines", n), zap.Int("drops_not_logged", suppressed))
	}
}

// rateLimit lets a message through at most once per period and counts
// the ones it held back.
type rateLimit struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (r *rateLimit) allow(period time.Duration) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < period {
		r.suppressed++
		return false, 0
	}
	r.last = now
	s := r.suppressed
	r.suppressed = 0
	return true, s
}
