package worker

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

// reserve books the next slot however far away it is.
func (b *budget) reserve(ctx context.Context) (time.Time, error) {
	slot, _, err := b.reserveWithin(ctx, math.MaxInt64)
	return slot, err
}

func budgetKV(t *testing.T) *broker.KV {
	t.Helper()
	b := brokertest.Connect(t)
	kv, err := b.KeyValue(context.Background(), broker.KVConfig{Bucket: budgetsBucket, History: 1, Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// bookConcurrently books perReplica slots of flow's budget from each of replicas budgets at
// once, and returns every slot booked, in time order.
func bookConcurrently(t *testing.T, kv KV, flow string, limit float64, replicas, perReplica int) []time.Time {
	t.Helper()
	var mu sync.Mutex
	var slots []time.Time
	var wg sync.WaitGroup
	for range replicas {
		b := newBudget(kv, flow, limit)
		wg.Go(func() {
			for range perReplica {
				s, err := b.reserve(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				slots = append(slots, s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(slots, func(a, b time.Time) int { return a.Compare(b) })
	return slots
}

// checkSecondWindows fails the test when any one-second window of slots (in time order) holds
// more than limit+1 of them (the limit plus the one-interval catch-up allowance).
func checkSecondWindows(t *testing.T, slots []time.Time, limit float64) {
	t.Helper()
	for i := range slots {
		j := i
		for j < len(slots) && slots[j].Sub(slots[i]) < time.Second {
			j++
		}
		if n := j - i; n > int(limit)+1 {
			t.Fatalf("%d slots within one second from %v; the limit is %.0f/s", n, slots[i], limit)
		}
	}
}

// Three replicas booking slots for one flow at once never book more than the limit in any
// second (plus the one-interval catch-up allowance). This is a property of the booked slots,
// so it holds however slow or loaded the machine is.
func TestBudgetIsSharedAcrossReplicas(t *testing.T) {
	t.Parallel()
	kv := budgetKV(t)
	const limit, perReplica = 20.0, 25
	slots := bookConcurrently(t, kv, "suspend", limit, 3, perReplica)
	if len(slots) != 3*perReplica {
		t.Fatalf("booked %d slots, want %d", len(slots), 3*perReplica)
	}
	for i := 1; i < len(slots); i++ {
		if slots[i].Equal(slots[i-1]) {
			t.Fatalf("two replicas booked the same slot %v", slots[i])
		}
	}
	// Any one-second window holds at most limit+1 slots.
	checkSecondWindows(t, slots, limit)
	// And the schedule is dense: 75 slots at 20/s span about 3.7 s, not more.
	if span := slots[len(slots)-1].Sub(slots[0]); span > time.Duration(float64(len(slots))/limit*float64(time.Second))+time.Second {
		t.Errorf("75 slots span %s; the budget wastes capacity", span)
	}
}

// A lifted limit (1,000/s here) books stretches of the schedule in one write, handed out
// locally: three replicas still never come closer than the interval, hold the limit in every
// second, and write the shared key about once per budgetLeaseSpan rather than once per call.
func TestBudgetLeasesKeepTheSharedLimitWithFewWrites(t *testing.T) {
	t.Parallel()
	kv := budgetKV(t)
	const limit, perReplica = 1000.0, 300
	slots := bookConcurrently(t, kv, "lifted", limit, 3, perReplica)
	interval := time.Duration(float64(time.Second) / limit)
	for i := 1; i < len(slots); i++ {
		if d := slots[i].Sub(slots[i-1]); d < interval {
			t.Fatalf("two slots %s apart (%v, %v); the interval is %s", d, slots[i-1], slots[i], interval)
		}
	}
	checkSecondWindows(t, slots, limit)
	_, rev, err := kv.Get(context.Background(), "lifted")
	if err != nil {
		t.Fatal(err)
	}
	if max := uint64(len(slots) / 5); rev > max {
		t.Errorf("%d slots took %d writes of the shared key; want at most %d (leases of %s)", len(slots), rev, max, budgetLeaseSpan)
	}
}

// A 429 seen by one replica keeps every replica away until Retry-After, and lowers the rate.
func TestBudgetPenaltyAppliesToEveryReplica(t *testing.T) {
	t.Parallel()
	kv := budgetKV(t)
	a, b := newBudget(kv, "notify", 10), newBudget(kv, "notify", 10)
	if _, err := a.reserve(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if err := a.penalize(context.Background(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	slot, err := b.reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if slot.Before(before.Add(3 * time.Second)) {
		t.Errorf("replica b booked %v, before the flow's Retry-After (%v)", slot, before.Add(3*time.Second))
	}
	next, err := b.reserve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if gap := next.Sub(slot); gap < 150*time.Millisecond {
		t.Errorf("after a 429 the slots are %s apart; the rate should have been lowered from 10/s (100ms)", gap)
	}
}

func TestBudgetRecoversAfterPenalty(t *testing.T) {
	t.Parallel()
	b := &budget{limit: 10}
	now := time.Unix(1000, 0)
	st := budgetState{Rate: 5, Changed: now.UnixNano()}
	if r := b.rate(st, now); r != 5 {
		t.Errorf("rate right after the penalty = %v, want 5", r)
	}
	if r := b.rate(st, now.Add(2*time.Second)); r != 7 {
		t.Errorf("rate 2s later = %v, want 7 (a tenth of the limit per second)", r)
	}
	if r := b.rate(st, now.Add(time.Minute)); r != 10 {
		t.Errorf("rate a minute later = %v, want the limit", r)
	}
}

// A budget state no replica could have written (a slot a month away, a penalty longer than the
// longest allowed) is repaired and reported, not obeyed: the flow is not stalled by a forged or
// corrupted key.
func TestForgedBudgetStateIsRepairedNotObeyed(t *testing.T) {
	t.Parallel()
	kv := budgetKV(t)
	ctx := context.Background()
	month := time.Now().Add(30 * 24 * time.Hour).UnixNano()
	forged, _ := json.Marshal(budgetState{TAT: month, Until: month})
	if _, err := kv.Put(ctx, "suspend", forged); err != nil {
		t.Fatal(err)
	}
	b := newBudget(kv, "suspend", 10)
	var why string
	b.repaired = func(_, w string) { why = w }
	slot, booked, err := b.reserveWithin(ctx, time.Second)
	if err != nil || !booked || time.Until(slot) > time.Second {
		t.Fatalf("slot %v booked %v err %v; want a slot now, the forged state repaired", slot, booked, err)
	}
	if why == "" {
		t.Error("the repair was not reported")
	}
}

// Deleting a flow's budget key resets its schedule, even on a replica that holds a copy with a
// long (legitimate) penalty and has booked nothing since.
func TestDeletingTheBudgetKeyResetsIt(t *testing.T) {
	t.Parallel()
	kv := budgetKV(t)
	ctx := context.Background()
	b := newBudget(kv, "suspend", 10)
	if err := b.penalize(ctx, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, booked, _ := b.reserveWithin(ctx, time.Second); booked {
		t.Fatal("a slot was booked inside a 30-minute penalty")
	}
	if err := kv.Delete(ctx, "suspend"); err != nil {
		t.Fatal(err)
	}
	slot, booked, err := b.reserveWithin(ctx, time.Second)
	if err != nil || !booked || time.Until(slot) > time.Second {
		t.Fatalf("after deleting the key: slot %v booked %v err %v; want a slot now", slot, booked, err)
	}
}
