package service

import (
	"context"

	"github.com/remediator/remediator/config"
)

// RunOnce is Run for tests that expect it to fail at start.
func RunOnce(ctx context.Context, cfg *config.Config) error { return Run(ctx, cfg, Options{}) }
