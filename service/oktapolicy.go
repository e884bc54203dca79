package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/remediator/remediator/backfill"
	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/publish"

	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/okta"
	"github.com/remediator/remediator/policy"
)

// This file wires what issue 10 adds on top of the org client: people.groups look-ups for the
// entity-risk rules, and the System Log poller (backfill.go).

var _ policy.GroupLookup = (*okta.GroupCache)(nil)

// RouterOptions are the policy options for cfg: with the okta block, the users' groups are
// looked up in the org (okta.groupCache bounds the cache); without it, an event whose rule
// needs groups it does not carry is refused (policy.ErrGroupMembershipUnknown), as before.
func RouterOptions(cfg *config.Config, oc *okta.Client) ([]policy.Option, error) {
	if oc == nil || !cfg.UsesGroups() {
		return nil, nil
	}
	gc, err := okta.NewGroupCache(oc, cfg.Okta.GroupCache.Size, cfg.Okta.GroupCache.TTL)
	if err != nil {
		return nil, fmt.Errorf("okta.groupCache: %w", err)
	}
	return []policy.Option{policy.WithGroupLookup(gc)}, nil
}

// backfillPublishTimeout bounds the publish of one System Log page (at most 1000 events).
const backfillPublishTimeout = 30 * time.Second

// startBackfill starts the System Log poller when okta.systemLog.backfill is enabled and
// returns its stop, which waits for the poller to hand its lease back. It needs the org
// client and JetStream; the worker need not be running (the events wait in JetStream).
func startBackfill(ctx context.Context, cfg *config.Config, oc *okta.Client, b *broker.Broker, log *slog.Logger, mp metric.MeterProvider, tp trace.TracerProvider) (func(context.Context) error, error) {
	bf := cfg.Okta.SystemLog.Backfill
	if !bf.Enabled || oc == nil {
		return nil, nil
	}
	kv, err := b.KeyValue(ctx, broker.KVConfig{Bucket: broker.KVBackfill, History: 1, Replicas: cfg.Streams.Replicas, Storage: cfg.Streams.Storage})
	if err != nil {
		return nil, fmt.Errorf("okta.systemLog.backfill: %w", err)
	}
	p, err := backfill.New(backfill.Config{
		Source: oc, Publisher: publish.New(b, tp), Store: kv,
		Filter: bf.Filter, Interval: bf.Interval, Lookback: bf.Lookback, PageSize: bf.PageSize,
		MaxEventBytes: cfg.Limits.MaxEventBytes, PublishTimeout: backfillPublishTimeout, Logger: log, MeterProvider: mp,
	})
	if err != nil {
		return nil, fmt.Errorf("okta.systemLog.backfill: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(runCtx)
	}()
	return func(stopCtx context.Context) error {
		log.Info("stopping the System Log backfill")
		cancel()
		select {
		case <-done:
			return nil
		case <-stopCtx.Done():
			return fmt.Errorf("System Log backfill did not stop: %w", stopCtx.Err())
		}
	}, nil
}
