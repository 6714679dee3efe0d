//go:build !linux

package main

import (
	"go.uber.org/zap"

	"github.com/schoolgate/schoolgate/config"
)

func checkFDBudget(*config.Config, *zap.Logger) {}
