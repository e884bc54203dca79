package service

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
)

// dialFunc makes one connection attempt. broker.Connect in production.
type dialFunc func(ctx context.Context, cfg broker.ConnConfig, log *slog.Logger) (*broker.Broker, error)

// The first-connection backoff: 100ms doubling to 5s, jittered, as broker's reconnects.
const (
	connectFirstDelay = 100 * time.Millisecond
	connectMaxDelay   = 5 * time.Second
)

// connectNATS makes the service's first connection. A worker started by an orchestrator before
// NATS is up must wait for it rather than exit (issue 11, defect 8): it tries attempts times
// (config.Forever: until ctx ends), logging each failure and reporting it through notify (the
// readiness probe's reason), with backoff between attempts. The CLI's one-shot commands do not
// come here: they call broker.Connect once and fail fast.
// It keeps its own loop rather than broker's RetryConnect because it must also count attempts
// and report each failure to readiness.
func connectNATS(ctx context.Context, dial dialFunc, cc broker.ConnConfig, attempts int, log *slog.Logger, notify func(error)) (*broker.Broker, error) {
	delay := connectFirstDelay
	for attempt := 1; ; attempt++ {
		b, err := dial(ctx, cc, log)
		if err == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if attempts != config.Forever && attempt >= attempts {
			return nil, fmt.Errorf("%w (gave up after %d attempts, nats.connectAttempts)", err, attempt)
		}
		wait := delay + time.Duration(rand.Int64N(int64(delay)/5+1))
		log.Warn("NATS is not reachable yet; retrying", slog.Int("attempt", attempt), slog.Duration("retry_in", wait), slog.Any("error", err))
		notify(fmt.Errorf("connecting to NATS (attempt %d): %w", attempt, err))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped while waiting for NATS: %w", err)
		}
		delay = min(2*delay, connectMaxDelay)
	}
}

// maxPayloader is what the size check needs from the connection: the server's max_payload.
type maxPayloader interface {
	MaxPayload() int64
}

// checkMaxPayload refuses a server that cannot carry the records the service builds around an
// event of limits.maxEventBytes (PLAN decision 1): a job or a dead letter that NATS refuses
// would otherwise loop or be lost.
func checkMaxPayload(cfg *config.Config, server maxPayloader) error {
	need := config.RequiredMaxPayload(cfg.Limits.MaxEventBytes)
	if have := server.MaxPayload(); have < need {
		return fmt.Errorf("%s: limits.maxEventBytes %d needs a NATS max_payload of at least %d (maxEventBytes*4/3 + 64 KiB), but the server's max_payload is %d — raise max_payload on the server or lower limits.maxEventBytes",
			cfg.Source(), cfg.Limits.MaxEventBytes, need, have)
	}
	return nil
}
