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

// budget is a flow's invocation-rate budget, shared by every replica through one key of a
// JetStream KV bucket.
//
// It is a GCRA-style schedule: the key holds the theoretical arrival time (TAT) of the next
// free slot. A replica books a slot with a compare-and-swap on the key's revision — the slot
// is the TAT when it lies at most one interval in the past, now when the flow was idle for
// longer, and never before a penalty's end; the new TAT is the slot plus one interval at the
// current rate —
// then sleeps until the slot comes. Because every replica books from the same key, N replicas
// together never exceed the rate, with no coordinator and nothing but NATS. The small
// catch-up allowance (one interval) keeps a replica that was a little late from losing its
// slot, so a busy flow runs at its full rate. An idle flow gets no such allowance: its first
// slot is now and the next one interval later, so a flow limited to 1/s is never called twice
// in the same instant after a quiet spell (which Okta's per-second bucket answers with 429). Replicas should keep their clocks in sync (NTP): a skew of s between two of them can
// bring two calls up to s closer together.
//
// A 429 shrinks the shared rate (halves it, down to a tenth of the limit) and pushes the next
// slot past Retry-After; the rate then grows back by a tenth of the limit per second.
//
// A slot is booked only if it comes soon enough for the caller (see reserveWithin): a job
// whose slot is far away (behind a penalty, or a long queue) is handed back to JetStream
// rather than held, and a booked slot is never left unused by a job that went away — it would
// delay every other job by one interval for nothing.
type budget struct {
	kv    KV
	key   string
	limit float64
	now   func() time.Time

	mu    sync.Mutex
	state budgetState
	rev   uint64 // revision of state; 0 when not loaded
	// notBefore is the next free slot last seen when none could be booked: this replica does
	// not fetch the flow's jobs before it.
	notBefore time.Time
	// lease is a stretch of the shared schedule this replica booked in one write, for a flow
	// whose interval is far below budgetLeaseSpan (a lifted limit): its slots are handed out
	// here without a write each. See reserveWithin.
	lease budgetLease
	// repaired, when set, hears of a shared state that could not have been written by a
	// replica and was reset rather than obeyed (see sane).
	repaired func(flow, why string)
}

type budgetState struct {
	TAT     int64   `json:"tat"`     // unix nanoseconds of the next free slot
	Rate    float64 `json:"rate"`    // current rate per second (≤ limit)
	Until   int64   `json:"until"`   // no slot before this (after a 429), unix nanoseconds
	Changed int64   `json:"changed"` // when Rate was last lowered, unix nanoseconds
}

// budgetLease is [next, end) of the shared schedule, owned by this replica, with its
// interval (nanoseconds).
type budgetLease struct{ next, end, interval int64 }

// budgetLeaseSpan is the most of the shared schedule one write books ahead. Only a flow whose
// interval is at most half of it leases (limits above 200/s): Okta's usual limits book a
// slot per call, as before, and a lease never left unused delays others by more than this.
const budgetLeaseSpan = 10 * time.Millisecond

const (
	// budgetMaxPenalty caps how long a 429 keeps a flow away (a Retry-After beyond it is
	// clipped), and so how far ahead a sane budget state can reach.
	budgetMaxPenalty        = time.Hour
	budgetRecoveryPerSecond = 0.1 // of the limit
	budgetFloor             = 0.1 // of the limit
	budgetCASAttempts       = 50
)

func newBudget(kv KV, flow string, limit float64) *budget {
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
// change returns the new state and whether to write it.
func (b *budget) update(ctx context.Context, change func(st budgetState, now time.Time) (budgetState, bool)) (budgetState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range budgetCASAttempts {
		if b.rev == 0 {
			if err := b.load(ctx); err != nil {
				return budgetState{}, err
			}
		}
		next, write := change(b.state, b.now())
		if !write {
			// Nothing booked: read the shared state afresh next time rather than trust this
			// copy, so that an operator deleting the key, or another replica's progress, is
			// seen by a replica that only ever looks.
			b.rev = 0
			return b.state, nil
		}
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
	} else if why := b.sane(st, b.now()); why != "" {
		// No replica writes this: repair it (the next booking stores the fresh schedule)
		// instead of stalling the flow on a forged or corrupted key.
		if b.repaired != nil {
			b.repaired(b.key, why)
		}
		st = budgetState{}
	}
	b.state, b.rev = st, rev
	return nil
}

// sane says why st is a state no replica could have written at now, or "" when it is one.
func (b *budget) sane(st budgetState, now time.Time) string {
	horizon := now.Add(budgetMaxPenalty + time.Minute).UnixNano() // a minute for clock skew
	switch {
	case st.TAT > horizon:
		return fmt.Sprintf("next slot %s is further away than the longest penalty (%s)", time.Unix(0, st.TAT).UTC().Format(time.RFC3339), budgetMaxPenalty)
	case st.Until > horizon:
		return fmt.Sprintf("penalty until %s is longer than the longest allowed (%s)", time.Unix(0, st.Until).UTC().Format(time.RFC3339), budgetMaxPenalty)
	case st.Rate < 0 || st.Rate > b.limit:
		return fmt.Sprintf("rate %g/s is outside 0..%g/s", st.Rate, b.limit)
	case st.Changed > now.Add(time.Minute).UnixNano():
		return "the rate was lowered in the future"
	}
	return ""
}

// reserveWithin books the next slot if it comes within the given time, and returns it. If
// it comes later, nothing is booked (booked false), the slot says when the next one could
// come, and this replica holds fetching until then (see heldUntil).
func (b *budget) reserveWithin(ctx context.Context, within time.Duration) (slot time.Time, booked bool, err error) {
	if at, ok := b.fromLease(); ok {
		return time.Unix(0, at), true, nil
	}
	var at, leaseEnd, leaseInterval int64
	_, err = b.update(ctx, func(st budgetState, now time.Time) (budgetState, bool) {
		rate := b.rate(st, now)
		interval := int64(float64(time.Second) / rate)
		at = st.TAT
		if at < now.UnixNano()-interval { // idle for more than an interval: no catch-up burst
			at = now.UnixNano()
		}
		at = max(at, st.Until)
		booked = time.Duration(at-now.UnixNano()) <= within
		if !booked {
			return st, false
		}
		st.TAT = at + interval
		leaseEnd, leaseInterval = 0, 0
		if n := int64(budgetLeaseSpan) / max(interval, 1); n >= 2 {
			// A lifted limit: book a stretch of the schedule at once, handed out locally.
			st.TAT = at + n*interval
			leaseEnd, leaseInterval = st.TAT, interval
		}
		if st.Rate > 0 && rate >= b.limit {
			st.Rate = 0 // recovered
		}
		return st, true
	})
	if err != nil {
		return time.Time{}, false, err
	}
	slot = time.Unix(0, at)
	b.mu.Lock()
	if !booked {
		b.notBefore = slot
	} else if leaseInterval > 0 {
		b.lease = budgetLease{next: at + leaseInterval, end: leaseEnd, interval: leaseInterval}
	}
	b.mu.Unlock()
	return slot, booked, nil
}

// fromLease takes the next slot of this replica's lease, if it has one left that is not
// past: each slot keeps a whole interval of the lease to itself, so that slots of different
// leases (other replicas') are never closer than an interval.
func (b *budget) fromLease() (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := &b.lease
	if l.interval == 0 {
		return 0, false
	}
	at := max(l.next, b.now().UnixNano())
	if at+l.interval > l.end {
		*l = budgetLease{} // used up or gone stale: the next booking writes
		return 0, false
	}
	l.next = at + l.interval
	return at, true
}

// heldUntil is when this replica may fetch the flow's jobs again: the end of the last penalty
// (429) it saw, or the next free slot when it last could not book one.
func (b *budget) heldUntil() time.Time {
	if b == nil {
		return time.Time{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return maxTime(time.Unix(0, b.state.Until), b.notBefore)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// waitWithin books a slot that comes within the given time and sleeps until it comes. It
// returns how long it waited, or booked false (and when a slot could come) if the next one is
// further away: nothing is booked then.
func (b *budget) waitWithin(ctx context.Context, within time.Duration) (waited time.Duration, booked bool, next time.Time, err error) {
	slot, booked, err := b.reserveWithin(ctx, within)
	if err != nil || !booked {
		return 0, false, slot, err
	}
	d := slot.Sub(b.now())
	if d <= 0 {
		return 0, true, slot, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, true, slot, nil
	case <-ctx.Done():
		return 0, false, slot, context.Cause(ctx)
	}
}

// penalize records a 429: it halves the shared rate and keeps every replica away from the
// flow until retryAfter has passed (one second when the flow did not say).
func (b *budget) penalize(ctx context.Context, retryAfter time.Duration) error {
	if retryAfter <= 0 {
		retryAfter = time.Second
	}
	retryAfter = min(retryAfter, budgetMaxPenalty) // a flow cannot park itself for longer
	b.mu.Lock()
	b.lease = budgetLease{} // no slot of an old lease after a 429
	b.mu.Unlock()
	_, err := b.update(ctx, func(st budgetState, now time.Time) (budgetState, bool) {
		st.Rate = max(b.rate(st, now)/2, b.limit*budgetFloor)
		st.Changed = now.UnixNano()
		st.Until = max(st.Until, now.Add(retryAfter).UnixNano())
		return st, true
	})
	return err
}

// hold keeps every replica away from the flow until d has passed, without lowering its rate:
// the target answered, but said its rate-limit window is spent (Okta's
// X-Rate-Limit-Remaining: 0) until a reset. Like a penalty it is capped at budgetMaxPenalty.
func (b *budget) hold(ctx context.Context, d time.Duration) error {
	d = min(d, budgetMaxPenalty)
	_, err := b.update(ctx, func(st budgetState, now time.Time) (budgetState, bool) {
		until := now.Add(d).UnixNano()
		if st.Until >= until {
			return st, false
		}
		st.Until = until
		return st, true
	})
	return err
}
