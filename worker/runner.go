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
}

func (w *Worker) newRunner(name string, sources []fetcher, concurrency int, h Handler) *runner {
	return &runner{w: w, name: name, sources: sources, slots: make(chan struct{}, concurrency), handler: h}
}

// Fetch waits: a short one on the preferred sources so that urgent work is not stuck behind a
// long poll on a quiet one, a longer one on the last.
const (
	preferredFetchWait = 20 * time.Millisecond
	lastFetchWait      = 500 * time.Millisecond
	fetchErrorPause    = time.Second
)

func (r *runner) fetchLoop(fetchCtx, workCtx context.Context) {
	for {
		select {
		case r.slots <- struct{}{}:
		case <-fetchCtx.Done():
			return
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
		r.inflight.Add(1)
		go func() {
			defer r.inflight.Done()
			defer func() { <-r.slots }()
			r.process(workCtx, msg)
		}()
	}
}

// next returns one message from the most preferred source that has one.
func (r *runner) next(ctx context.Context) (*broker.Message, error) {
	var firstErr error
	for i, s := range r.sources {
		wait := preferredFetchWait
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

// heartbeat is how often a delivery being worked on tells JetStream it is still in progress.
const heartbeat = 10 * time.Second

// settleTimeout bounds the final ack/nak/term, which run even after shutdown began.
const settleTimeout = 10 * time.Second

func (r *runner) process(ctx context.Context, msg Message) {
	d := &Delivery{
		Msg: msg, Subject: msg.Subject(), Data: msg.Data(), Header: msg.Headers(),
		Delivered: msg.Delivered(), Sequence: msg.StreamSequence(), Published: msg.Published(),
		Stage: r.name,
	}
	stopBeat := r.heartbeat(msg)
	err := r.safeHandle(ctx, d)
	stopBeat()
	r.settle(d, err)
}

func (r *runner) heartbeat(msg Message) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeat)
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
