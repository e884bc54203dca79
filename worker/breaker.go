package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/remediator/remediator/flow"
)

// BreakerConfig tunes a flow's circuit breaker. It opens after sustained failures (5xx,
// timeouts, connection errors; not 4xx, which prove the flow is up, and not 429, which the
// rate budget handles), keeps the flow's jobs waiting in JetStream while open, then lets one
// probe through (half-open): success closes it, failure opens it again.
type BreakerConfig struct {
	// ConsecutiveFailures opens the breaker. Default 5.
	ConsecutiveFailures int
	// FailureRatio over at least MinRequests in Window also opens it. Defaults 0.5, 20, 60s.
	FailureRatio float64
	MinRequests  int
	Window       time.Duration
	// Cooldown is how long it stays open before a probe. Default 30s.
	Cooldown time.Duration
}

func (c *BreakerConfig) setDefaults() {
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = 5
	}
	if c.FailureRatio == 0 {
		c.FailureRatio = 0.5
	}
	if c.MinRequests == 0 {
		c.MinRequests = 20
	}
	if c.Window == 0 {
		c.Window = time.Minute
	}
	if c.Cooldown == 0 {
		c.Cooldown = 30 * time.Second
	}
}

type breaker = gobreaker.TwoStepCircuitBreaker[struct{}]

func newBreaker(name string, c BreakerConfig, log *slog.Logger, onChange func(state int)) *breaker {
	c.setDefaults()
	return gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         name,
		MaxRequests:  1,
		Interval:     c.Window,
		BucketPeriod: c.Window / 6,
		Timeout:      c.Cooldown,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return int(n.ConsecutiveFailures) >= c.ConsecutiveFailures ||
				(int(n.Requests) >= c.MinRequests && float64(n.TotalFailures)/float64(n.Requests) >= c.FailureRatio)
		},
		IsSuccessful: func(err error) bool {
			var fe *flow.Error
			return err == nil || (errors.As(err, &fe) && fe.Class == flow.ClassPermanent)
		},
		IsExcluded: func(err error) bool {
			var fe *flow.Error
			return errors.Is(err, context.Canceled) || (errors.As(err, &fe) && fe.StatusCode == 429)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			level := slog.LevelWarn
			if to == gobreaker.StateClosed {
				level = slog.LevelInfo
			}
			log.Log(context.Background(), level, "circuit breaker changed state", slog.String("flow", name),
				slog.String("from", from.String()), slog.String("to", to.String()))
			if onChange != nil {
				onChange(int(to))
			}
		},
	})
}

// breakerOpen reports whether the breaker refuses calls now.
func breakerOpen(b *breaker) bool { return b.State() == gobreaker.StateOpen }

// holdPoll is how often a runner whose flow is held (breaker open, paused, capped) looks again.
const holdPoll = 250 * time.Millisecond

// ready holds fetching while the flow must not be called: its breaker is open, an operator
// paused it, or its blast-radius cap is full. Its jobs wait in JetStream meanwhile.
func (fr *flowRunner) ready(ctx context.Context) error {
	for fr.held() {
		select {
		case <-time.After(holdPoll):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (fr *flowRunner) held() bool {
	if breakerOpen(fr.breaker) {
		return true
	}
	if _, paused := fr.controls.paused(fr.Endpoint.Name); paused {
		return true
	}
	_, capped := fr.blast.full(time.Now())
	return capped
}

func (fr *flowRunner) admit(ctx context.Context) error {
	_, err := fr.waitBudget(ctx)
	return err
}
