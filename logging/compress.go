package logging

import (
	"errors"
	"time"

	"go.uber.org/zap"
)

// compressLater starts compressing the days older than a week, beside the
// writer (a day takes seconds), unless a run is still going. On the
// writer goroutine, or in Open.
func (w *Writer) compressLater(today time.Time) {
	if w.compressDone != nil {
		select {
		case <-w.compressDone:
		default:
			return // still at it
		}
	}
	done := make(chan struct{})
	w.compressDone = done
	go func() {
		defer close(done)
		names, err := CompressOld(w.o.Dir, w.o.Location, today, w.stopCompress)
		if len(names) > 0 {
			w.log.Info("access log: compressed days older than a week", zap.Strings("files", names))
		}
		if err != nil && !errors.Is(err, errStopped) {
			w.log.Error("access log: compressing old days", zap.Error(err))
		}
	}()
}
