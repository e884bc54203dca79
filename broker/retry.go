package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
)

// Retry policy for JetStream set-up requests (streams, buckets, consumers)
// and publishes: each attempt is bounded by attemptTimeout, and attempts are
// spaced from retryInitial doubling to retryMax, with jitter, until the
// caller's ctx ends. On a fresh cluster the first requests meet no meta
// leader, then streams without a leader, for a few seconds; a single attempt
// bounded by the caller's whole deadline would just time out.
const (
	attemptTimeout = 5 * time.Second
	retryInitial   = 100 * time.Millisecond
	retryMax       = 2 * time.Second
)

func newRetryPolicy() *backoff.ExponentialBackOff {
	return backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(retryInitial),
		backoff.WithMaxInterval(retryMax),
		backoff.WithMaxElapsedTime(0), // bounded by ctx
	)
}

// createRace reports whether a create failed because another client created
// the same thing at the same moment (two replicas starting together). The
// next attempt of a create-or-update then finds it and updates or opens it.
func createRace(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) ||
		errors.Is(err, jetstream.ErrConsumerExists) ||
		errors.Is(err, jetstream.ErrConsumerNameAlreadyInUse) ||
		hasCode(err, jetstream.JSErrCodeConsumerNameExists, jetstream.JSErrCodeConsumerAlreadyExists, jetstream.JSErrCodeConsumerExists)
}

// retryTransient runs op until it succeeds, fails with an error that is
// neither [transient] nor a [createRace], or ctx ends; each attempt gets its
// own deadline. Retries are logged at Info with the attempt number, the
// delay and the error. The last error is returned.
func retryTransient[T any](ctx context.Context, logger *slog.Logger, what string, op func(ctx context.Context) (T, error)) (T, error) {
	policy := newRetryPolicy()
	for attempt := 1; ; attempt++ {
		attemptCtx, cancel := context.WithTimeout(ctx, attemptTimeout)
		v, err := op(attemptCtx)
		cancel()
		if err == nil {
			return v, nil
		}
		if !transient(err) && !createRace(err) {
			return v, err
		}
		if ctx.Err() != nil {
			return v, fmt.Errorf("%w (gave up after %d attempts: %w)", err, attempt, context.Cause(ctx))
		}
		delay := policy.NextBackOff()
		logger.InfoContext(ctx, "JetStream not ready, retrying", "op", what, "attempt", attempt, "retry_in", delay, "error", err)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return v, fmt.Errorf("%w (gave up after %d attempts: %w)", err, attempt, context.Cause(ctx))
		}
	}
}
