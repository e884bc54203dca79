package worker

import (
	"context"
	"testing"
	"time"
)

// An answer saying the target's rate-limit window is spent (flow.Result.Hold) keeps every
// replica away until the reset, like a 429's Retry-After, but leaves the rate alone (the
// target refused nothing); a shorter hold seen later does not shorten it.
func TestBudgetHoldAppliesToEveryReplicaWithoutSlowing(t *testing.T) {
	t.Parallel()
	kv := budgetKV(t)
	a, b := newBudget(kv, "okta-suspend", 10), newBudget(kv, "okta-suspend", 10)
	if _, err := a.reserve(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := a.hold(context.Background(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.hold(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	slot, err := b.reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if slot.Before(before.Add(3 * time.Second)) {
		t.Errorf("replica b booked %v, before the hold's end (%v)", slot, before.Add(3*time.Second))
	}
	if until := b.heldUntil(); until.Before(before.Add(3 * time.Second)) {
		t.Errorf("replica b fetches again at %v, before the hold's end", until)
	}
	next, err := b.reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if gap := next.Sub(slot); gap > 110*time.Millisecond {
		t.Errorf("after a hold the slots are %s apart; the rate (10/s, 100ms) should be unchanged", gap)
	}
}
