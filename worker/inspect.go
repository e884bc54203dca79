package worker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/remediator/remediator/broker"
)

// FlowState is what this replica knows of a flow right now, for the ops console.
type FlowState struct {
	Flow string
	// Breaker is the circuit breaker's state on this replica: closed, half-open or open.
	Breaker string
	// RateLimit is the flow's shared invocation rate budget, per second.
	RateLimit float64
	// BlastMax and BlastWindow are the blast-radius cap (0: none); BlastUsed counts the
	// invocations within the window now, across replicas (-1 when it could not be read).
	BlastMax    int
	BlastWindow time.Duration
	BlastUsed   int
	// DryRun is the flow's configured dry-run (operators' switches come on top).
	DryRun bool
}

// FlowStates reports every flow's state, by name. Before [Worker.Run] has bound the flows,
// the blast-radius use is unknown (-1).
func (w *Worker) FlowStates(ctx context.Context) []FlowState {
	started := w.started.Load() // the runners' caps are set before started, and only read after
	var out []FlowState
	for name, fr := range w.flows {
		st := FlowState{Flow: name, Breaker: breakerState(fr.breaker), RateLimit: fr.RateLimit,
			BlastMax: fr.BlastMax, BlastWindow: fr.BlastWindow, DryRun: fr.DryRun, BlastUsed: -1}
		if started && fr.blast != nil {
			st.BlastUsed = fr.blast.used(ctx, time.Now())
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b FlowState) int { return strings.Compare(a.Flow, b.Flow) })
	return out
}

func breakerState(b *breaker) string {
	switch b.State() {
	case gobreaker.StateOpen:
		return "open"
	case gobreaker.StateHalfOpen:
		return "half-open"
	}
	return "closed"
}

// used counts the invocations within the window, across replicas; -1 when unreadable.
func (b *blastCap) used(ctx context.Context, now time.Time) int {
	data, _, err := b.kv.Get(ctx, b.key)
	if errors.Is(err, broker.ErrKeyNotFound) {
		return 0 // nothing invoked within any window yet
	}
	if err != nil {
		return -1
	}
	var times []int64
	if json.Unmarshal(data, &times) != nil {
		return -1
	}
	cut := now.Add(-b.window).UnixNano()
	n := 0
	for _, t := range times {
		if t > cut {
			n++
		}
	}
	return n
}
