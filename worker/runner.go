package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/remediator/remediator/broker"
)

// fetcher is a pull consumer. *broker.Consumer implements it.
type fetcher interface {
	Fetch(ctx context.Context, max int, wait time.Duration) ([]*broker.Message, error)
}

var _ fetcher = (*broker.Consumer)(nil)

// runner fetches from its sources, in order of preference, only when it has a free slot, and
// hands each message to the handler on its own goroutine.
type runner struct {
	w        *Worker
	name     string
	sources  []fetcher
	slots    chan struct{}
	handler  Handler
	inflight sync.WaitGroup
	// gate, when set, holds fetching while the destination refuses work and spends its
	// budget for each fetched message before the message is handled.
	gate gate
}

// gate is what a runner asks before fetching and before handling. *flowRunner implements it.
type gate interface {
	// ready blocks until fetching makes sense (the flow's breaker is not open).
	ready(ctx context.Context) error
	// admit blocks until the message may be handled (a rate-budget slot has come).
	admit(ctx context.Context) error
}

func (w *Worker) newRunner(name string, sources []fetcher, concurrency int, h Handler) *runner {
	return &runner{w: w, name: name, sources: sources, slots: make(chan struct{}, concurrency), handler: h}
}

// Fetch waits: none on the preferred sources (take what is there), a long poll on the last, so
// that urgent work waits at most one poll when everything was quiet.
const (
	lastFetchWait   = 250 * time.Millisecond
	fetchErrorPause = time.Second
)

func (r *runner) fetchLoop(fetchCtx, workCtx context.Context) {
	for {
		select {
		case r.slots <- struct{}{}:
		case <-fetchCtx.Done():
			return
		}
		if r.gate != nil {
			if err := r.gate.ready(fetchCtx); err != nil {
				<-r.slots
				return
			}
		}
		msg, err := r.next(fetchCtx)
		if msg == nil {
			<-r.slots
			if fetchCtx.Err() != nil {
				return
			}
			if err != nil {
				r.w.log.Warn("fetch failed", slog.String("runner", r.name), slog.Any("error", err))
				select {
				case <-time.After(fetchErrorPause):
				case <-fetchCtx.Done():
					return
				}
			}
			continue
		}
		prepaid := false
		if r.gate != nil {
			// The message waits here for its slot, not in JetStream; this loop holds at most one.
			if err := r.gate.admit(fetchCtx); err != nil {
				if nerr := msg.Nak(0); nerr != nil {
					r.w.log.Warn("could not hand back a message; it will be redelivered", slog.String("runner", r.name), slog.Any("error", nerr))
				}
				<-r.slots
				if fetchCtx.Err() != nil {
					return
				}
				r.w.log.Warn("rate budget unavailable", slog.String("runner", r.name), slog.Any("error", err))
				continue
			}
			prepaid = true
		}
		r.inflight.Add(1)
		go func() {
			defer r.inflight.Done()
			defer func() { <-r.slots }()
			r.process(workCtx, msg, prepaid)
		}()
	}
}

// next returns one message from the most preferred source that has one.
func (r *runner) next(ctx context.Context) (*broker.Message, error) {
	var firstErr error
	for i, s := range r.sources {
		var wait time.Duration
		if i == len(r.sources)-1 {
			wait = lastFetchWait
		}
		msgs, err := s.Fetch(ctx, 1, wait)
		if err != nil {
			if firstErr == nil && ctx.Err() == nil {
				firstErr = err
			}
			continue
		}
		if len(msgs) > 0 {
			return msgs[0], nil
		}
	}
	return nil, firstErr
}

// settleTimeout bounds the final ack/nak/term, which run even after shutdown began.
const settleTimeout = 10 * time.Second

func (r *runner) process(ctx context.Context, msg Message, prepaid bool) {
	defer r.w.metrics.track(ctx, r.name)() // remediator_inflight
	d := &Delivery{
		Msg: msg, Subject: msg.Subject(), Data: msg.Data(), Header: msg.Headers(),
		Delivered: msg.Delivered(), Sequence: msg.StreamSequence(), Published: msg.Published(),
		Stage: r.name, prepaid: prepaid,
	}
	stopBeat := r.heartbeat(msg)
	err := r.safeHandle(ctx, d)
	stopBeat()
	r.settle(d, err)
}

func (r *runner) heartbeat(msg Message) func() {
	done := make(chan struct{})
	go func() {
		// A third of AckWait: two beats may be lost before JetStream gives the message to another replica.
		t := time.NewTicker(r.w.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = msg.InProgress() // best effort: a missed beat means a redelivery, never a loss
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// safeHandle is the last line of defence: a panic outside the recover middleware is logged and
// the message is nak'ed, never lost and never crashing the process.
func (r *runner) safeHandle(ctx context.Context, d *Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.w.log.Error("panic outside the handler chain", slog.String("runner", r.name), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = Retry(0, "internal error", fmt.Errorf("panic: %v", p))
		}
	}()
	return r.handler.Handle(ctx, d)
}

// settle acks, naks or terminates the message. It acks or terminates only what was recorded.
func (r *runner) settle(d *Delivery, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	var serr error
	switch {
	case err == nil && d.recorded:
		serr = d.Msg.Ack(ctx)
	case err != nil && d.recorded:
		if dl, ok := asDeadLetter(err); ok {
			serr = d.Msg.Term(string(dl.Reason))
			break
		}
		delay := r.w.retryDelay(d.Delivered)
		if re, ok := asRetry(err); ok && re.Delay > 0 {
			delay = re.Delay
		}
		serr = d.Msg.Nak(delay)
	default:
		// Not recorded: hand it back. A shutdown cancellation comes back at once, elsewhere.
		delay := r.w.retryDelay(d.Delivered)
		if errors.Is(err, errShutdown) || errors.Is(err, context.Canceled) {
			delay = 0
		} else if re, ok := asRetry(err); ok && re.Delay > 0 {
			delay = re.Delay
		}
		serr = d.Msg.Nak(delay)
	}
	if serr != nil {
		// The message will be redelivered after AckWait; the records carry de-duplication ids.
		r.w.log.Warn("could not settle message; it will be redelivered", slog.String("runner", r.name), slog.Uint64("seq", d.Sequence), slog.Any("error", serr))
	}
}

// retryDelay is the JetStream redelivery delay after the given delivery: exponential from
// RetryBaseDelay, capped at RetryMaxDelay, with "equal jitter" so that a burst of failures does
// not come back as a burst.
func (w *Worker) retryDelay(delivered int) time.Duration {
	if delivered < 1 {
		delivered = 1
	}
	d := w.cfg.RetryBaseDelay
	for i := 1; i < delivered && d < w.cfg.RetryMaxDelay; i++ {
		d *= 2
	}
	d = min(d, w.cfg.RetryMaxDelay)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}
