package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/remediator/remediator/flow"
)

func TestStatusClass(t *testing.T) {
	t.Parallel()
	res := func(code int) *flow.Result { return &flow.Result{StatusCode: code} }
	ferr := func(class flow.Class, code int, err error) error {
		return &flow.Error{Class: class, StatusCode: code, Err: err}
	}
	tests := []struct {
		name string
		res  *flow.Result
		err  error
		want string
	}{
		{"200", res(200), nil, "2xx"},
		{"204", res(204), nil, "2xx"},
		{"302", res(302), ferr(flow.ClassPermanent, 302, nil), "3xx"},
		{"400", res(400), ferr(flow.ClassPermanent, 400, nil), "4xx"},
		{"401", res(401), ferr(flow.ClassPermanent, 401, nil), "4xx"},
		{"429", res(429), ferr(flow.ClassRetryable, 429, nil), "429"},
		{"500", res(500), ferr(flow.ClassRetryable, 500, nil), "5xx"},
		{"503 without a result", nil, ferr(flow.ClassRetryable, 503, nil), "5xx"},
		{"timeout", nil, ferr(flow.ClassRetryable, 0, context.DeadlineExceeded), "timeout"},
		{"wrapped timeout", nil, fmt.Errorf("attempt: %w", ferr(flow.ClassRetryable, 0, context.DeadlineExceeded)), "timeout"},
		{"canceled", nil, ferr(flow.ClassRetryable, 0, context.Canceled), "canceled"},
		{"refused", nil, ferr(flow.ClassRetryable, 0, syscall.ECONNREFUSED), "connection"},
		{"reset", nil, ferr(flow.ClassRetryable, 0, io.ErrUnexpectedEOF), "connection"},
		{"invalid input", nil, ferr(flow.ClassPermanent, 0, flow.ErrInvalidInput), "invalid"},
		{"other error", nil, errors.New("boom"), "connection"},
	}
	for _, tt := range tests {
		if got := statusClass(tt.res, tt.err); got != tt.want {
			t.Errorf("%s: statusClass = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestMetricsNilSafe: a worker built without New (or a zero metrics) must not panic.
func TestMetricsNilSafe(t *testing.T) {
	t.Parallel()
	var m *metrics
	ctx := context.Background()
	m.eventReceived(ctx, &Delivery{Subject: "remediation.events.ispm", Delivered: 1})
	m.eventValidated(ctx, "ispm_issue")
	m.eventRejected(ctx, "", "invalid_json")
	m.attempted(ctx, "f", nil, nil)
	m.retried(ctx, "f", retryQuick)
	m.deadLettered(ctx, "no_route")
	m.track(ctx, "intake")()
	m.rateLimitWait(ctx, "f", 0)
	m.circuitState("f", 2)
	m.remediated(ctx, &Job{Flow: "f"})
	m.observeConsumers(nil, nil)()
}
