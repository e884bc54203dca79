package worker

import (
	"context"
	"errors"
	"fmt"
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
	// ConsecutiveFailures opens the breaker. ≥ 1.
	ConsecutiveFailures int
	// FailureRatio over at least MinRequests calls in Window also opens it. 0: this rule is
	// off; otherwise in (0, 1], with MinRequests ≥ 1 and Window > 0.
	FailureRatio float64
	MinRequests  int
	Window       time.Duration
	// Cooldown is how long it stays open before a probe. > 0.
	Cooldown time.Duration
}

func (c BreakerConfig) validate() error {
	var errs []error
	if c.ConsecutiveFailures < 1 {
		errs = append(errs, fmt.Errorf("ConsecutiveFailures is %d; must be at least 1", c.ConsecutiveFailures))
	}
	if c.Cooldown <= 0 {
		errs = append(errs, fmt.Errorf("Cooldown is %s; must be positive", c.Cooldown))
	}
	if !(c.FailureRatio >= 0 && c.FailureRatio <= 1) {
		errs = append(errs, fmt.Errorf("FailureRatio is %v; must be between 0 (off) and 1", c.FailureRatio))
	}
	if c.FailureRatio > 0 && (c.MinRequests < 1 || c.Window <= 0) {
		errs = append(errs, fmt.Errorf("MinRequests (%d) and Window (%s) must be positive when FailureRatio is %v", c.MinRequests, c.Window, c.FailureRatio))
	}
	return errors.Join(errs...)
}

type breaker = gobreaker.TwoStepCircuitBreaker[struct{}]

func newBreaker(name string, c BreakerConfig, log *slog.Logger, onChange func(state int)) *breaker {
	return gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         name,
		MaxRequests:  1,
		Interval:     c.Window,
		BucketPeriod: c.Window / 6,
		Timeout:      c.Cooldown,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return int(n.ConsecutiveFailures) >= c.ConsecutiveFailures ||
				(c.FailureRatio > 0 && int(n.Requests) >= c.MinRequests && float64(n.TotalFailures)/float64(n.Requests) >= c.FailureRatio)
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

// budgetRecheck is how long a replica holds a flow on its own copy of a far budget slot before
// it looks at the shared state again.
const budgetRecheck = 30 * time.Second

// ready holds fetching while the flow must not be called: its breaker is open, an operator
// paused it, its blast-radius cap is full, or it is penalised (a 429's Retry-After, or a slot
// seen far away). Its jobs wait in JetStream meanwhile, not in this replica.
func (fr *flowRunner) ready(ctx context.Context) error {
	for {
		wait, recheck := time.Duration(0), false
		if fr.held() {
			wait = holdPoll
		} else if until := fr.budget.heldUntil(); time.Until(until) > 0 {
			wait = time.Until(until)
			if wait > budgetRecheck {
				// A long hold is re-read from the shared budget now and then (one fetch, handed
				// back if the slot is still far), so that an operator deleting the key, or a
				// repaired state, frees the flow without a restart.
				wait, recheck = budgetRecheck, true
			}
		}
		if wait <= 0 {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			if recheck {
				return nil
			}
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
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

func (fr *flowRunner) admit(ctx context.Context, within time.Duration) (time.Time, bool, error) {
	return fr.budget.reserveWithin(ctx, within)
}
