package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/remediator/remediator/broker"
)

// kvStore is the part of a JetStream key-value bucket the budget needs. *broker.KV implements it.
type kvStore interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error)
}

var _ kvStore = (*broker.KV)(nil)

// budget is a flow's invocation-rate budget, shared by every replica through one key of a
// JetStream KV bucket.
//
// It is a GCRA-style schedule: the key holds the theoretical arrival time (TAT) of the next
// free slot. A replica books a slot with a compare-and-swap on the key's revision — the slot
// is max(TAT, now − one interval), the new TAT the slot plus one interval at the current rate —
// then sleeps until the slot comes. Because every replica books from the same key, N replicas
// together never exceed the rate, with no coordinator and nothing but NATS. The small
// catch-up allowance (one interval) keeps a replica that was a little late from losing its
// slot, so a busy flow runs at its full rate; it never allows more than one extra call in any
// second. Replicas should keep their clocks in sync (NTP): a skew of s between two of them can
// bring two calls up to s closer together.
//
// A 429 shrinks the shared rate (halves it, down to a tenth of the limit) and pushes the next
// slot past Retry-After; the rate then grows back by a tenth of the limit per second.
type budget struct {
	kv    kvStore
	key   string
	limit float64
	now   func() time.Time

	mu    sync.Mutex
	state budgetState
	rev   uint64 // revision of state; 0 when not loaded
}

type budgetState struct {
	TAT     int64   `json:"tat"`     // unix nanoseconds of the next free slot
	Rate    float64 `json:"rate"`    // current rate per second (≤ limit)
	Until   int64   `json:"until"`   // no slot before this (after a 429), unix nanoseconds
	Changed int64   `json:"changed"` // when Rate was last lowered, unix nanoseconds
}

const (
	budgetRecoveryPerSecond = 0.1 // of the limit
	budgetFloor             = 0.1 // of the limit
	budgetCASAttempts       = 50
)

func newBudget(kv kvStore, flow string, limit float64) *budget {
	return &budget{kv: kv, key: flow, limit: limit, now: time.Now}
}

// rate is the effective rate at now: the lowered rate recovering linearly toward the limit.
func (b *budget) rate(st budgetState, now time.Time) float64 {
	if st.Rate <= 0 || st.Rate >= b.limit {
		return b.limit
	}
	elapsed := now.Sub(time.Unix(0, st.Changed)).Seconds()
	return min(b.limit, st.Rate+b.limit*budgetRecoveryPerSecond*max(0, elapsed))
}

// update applies change to the shared state with optimistic concurrency, reloading on conflict.
func (b *budget) update(ctx context.Context, change func(st budgetState, now time.Time) budgetState) (budgetState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range budgetCASAttempts {
		if b.rev == 0 {
			if err := b.load(ctx); err != nil {
				return budgetState{}, err
			}
		}
		next := change(b.state, b.now())
		data, err := json.Marshal(next)
		if err != nil {
			return budgetState{}, err
		}
		var rev uint64
		if b.rev == 0 && b.state == (budgetState{}) {
			rev, err = b.kv.Create(ctx, b.key, data)
		} else {
			rev, err = b.kv.Update(ctx, b.key, data, b.rev)
		}
		if err == nil {
			b.state, b.rev = next, rev
			return next, nil
		}
		if !errors.Is(err, broker.ErrRevisionMismatch) && !errors.Is(err, broker.ErrKeyExists) {
			return budgetState{}, fmt.Errorf("rate budget for flow %s: %w", b.key, err)
		}
		b.rev = 0 // another replica moved first: reload and try again
	}
	return budgetState{}, fmt.Errorf("rate budget for flow %s: too much contention", b.key)
}

func (b *budget) load(ctx context.Context) error {
	data, rev, err := b.kv.Get(ctx, b.key)
	if errors.Is(err, broker.ErrKeyNotFound) {
		b.state, b.rev = budgetState{}, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("rate budget for flow %s: %w", b.key, err)
	}
	var st budgetState
	if json.Unmarshal(data, &st) != nil {
		st = budgetState{} // unreadable: start a fresh schedule
	}
	b.state, b.rev = st, rev
	return nil
}

// reserve books the next slot and returns its time.
func (b *budget) reserve(ctx context.Context) (time.Time, error) {
	var slot int64
	_, err := b.update(ctx, func(st budgetState, now time.Time) budgetState {
		rate := b.rate(st, now)
		interval := int64(float64(time.Second) / rate)
		slot = max(st.TAT, now.UnixNano()-interval, st.Until)
		st.TAT = slot + interval
		if st.Rate > 0 && rate >= b.limit {
			st.Rate = 0 // recovered
		}
		return st
	})
	return time.Unix(0, slot), err
}

// wait books a slot and sleeps until it comes. It returns how long it waited.
func (b *budget) wait(ctx context.Context) (time.Duration, error) {
	slot, err := b.reserve(ctx)
	if err != nil {
		return 0, err
	}
	d := slot.Sub(b.now())
	if d <= 0 {
		return 0, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, nil
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	}
}

// penalize records a 429: it halves the shared rate and keeps every replica away from the
// flow until retryAfter has passed (one second when the flow did not say).
func (b *budget) penalize(ctx context.Context, retryAfter time.Duration) error {
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	_, err := b.update(ctx, func(st budgetState, now time.Time) budgetState {
		st.Rate = max(b.rate(st, now)/2, b.limit*budgetFloor)
		st.Changed = now.UnixNano()
		st.Until = max(st.Until, now.Add(retryAfter).UnixNano())
		return st
	})
	return err
}
