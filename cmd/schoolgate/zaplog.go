package main

import (
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

var zapcoreISO8601 = zapcore.ISO8601TimeEncoder

// zapcoreNew returns a JSON core at info level writing to w (the program's
// own log, separate from the access log).
func zapcoreNew(enc zapcore.EncoderConfig, w io.Writer) zapcore.Core {
	return zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), zap.InfoLevel)
}
