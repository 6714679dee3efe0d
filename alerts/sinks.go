package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/logging"
)

// sink delivers one message: an Alert, or a log checkpoint.
type sink interface {
	send(ctx context.Context, body any) error
	close() error
}

// permanentError is a failure that retrying will not fix (e.g. HTTP 400).
type permanentError struct{ error }

type sinkWorker struct {
	name string
	s    sink
	q    chan any // Alert or logging.Checkpoint
	a    *Alerter
}

func (a *Alerter) newSink(name string, s sink) *sinkWorker {
	return &sinkWorker{name: name, s: s, q: make(chan any, sinkQueue), a: a}
}

// run delivers queued alerts one at a time, retrying with exponential
// backoff; a sink that is down delays only its own queue, which is
// bounded (overflow is dropped and counted in dispatch).
func (w *sinkWorker) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for al := range w.q {
		w.deliver(al)
	}
}

func (w *sinkWorker) deliver(msg any) {
	a := w.a
	delay := a.tm.backoff
	var err error
	for try := 1; try <= max(1, a.tm.retries); try++ {
		if a.ctx.Err() != nil {
			err = a.ctx.Err()
			break
		}
		ctx, cancel := context.WithTimeout(a.ctx, a.tm.timeout)
		err = w.s.send(ctx, msg)
		cancel()
		if err == nil {
			a.m.sent.WithLabelValues(w.name).Inc()
			return
		}
		a.m.failures.WithLabelValues(w.name).Inc()
		var perm permanentError
		if errors.As(err, &perm) || try == a.tm.retries {
			break
		}
		a.log.Warn("sending alert failed; will retry", zap.String("sink", w.name), zap.Error(err),
			zap.Duration("in", delay))
		select {
		case <-time.After(delay):
		case <-a.ctx.Done():
		}
		delay = min(2*delay, time.Minute)
	}
	a.m.dropped.Inc()
	fields := []zap.Field{zap.String("sink", w.name), zap.Error(err)}
	switch m := msg.(type) {
	case Alert:
		fields = append(fields, zap.String("user", m.User), zap.String("ip", m.IP), zap.Int("attempts", m.Count))
		a.log.Error("alert not delivered", fields...)
	case logging.Checkpoint:
		fields = append(fields, zap.String("file", m.File), zap.Int64("seq", m.Seq), zap.Int64("n", m.N))
		a.log.Error("log checkpoint not delivered", fields...)
	}
}

// webhook POSTs the alert as JSON.
type webhook struct {
	url    string
	client *http.Client
}

func newWebhook(u string, tm timing) *webhook {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // never through ourselves or the environment's proxy
	return &webhook{url: u, client: &http.Client{Transport: tr, Timeout: tm.timeout}}
}

func (h *webhook) send(ctx context.Context, msg any) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return permanentError{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "schoolgate-alerts")
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting to webhook: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // draining for reuse
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return permanentError{fmt.Errorf("webhook answered %s", resp.Status)}
	}
}

func (h *webhook) close() error {
	h.client.CloseIdleConnections()
	return nil
}

// fileSink appends one JSON line per alert (O_APPEND, mode 0640).
type fileSink struct {
	f *os.File
}

func openFileSink(path string) (*fileSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("alerts: opening alerts file: %w", err)
	}
	return &fileSink{f: f}, nil
}

func (s *fileSink) send(_ context.Context, msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return permanentError{err}
	}
	// One write per line: with O_APPEND the line lands whole at the end.
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing alerts file: %w", err)
	}
	return nil
}

func (s *fileSink) close() error { return s.f.Close() }
