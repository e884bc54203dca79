package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/remediator/remediator/broker"
)

// runner fetches from its sources, most urgent first, in batches as large as its free slots
// (and, for a flow, its rate budget) allow, and hands each message to its step on its own
// goroutine. It owns its in-flight work: fetchLoop returns only once every delivery it started
// has been settled.
//
// An idle runner either long-polls its sources (intake: one consumer, whatever the number of
// flows) or, when it has a doorbell (dispatch), asks JetStream nothing at all: it sleeps until
// its bell rings — a job was published for its flow (see [Doorbells]), or a job it handed back
// with a delay is due — with a slow safety poll for a ring that was lost. So idle flows cost
// no pull requests, and a job published to an idle flow is fetched at once, the most urgent
// first, never after a poll of less urgent work.
type runner struct {
	w       *Worker
	name    string
	flow    string // the flow of a dispatch runner; "" for intake
	sources []*binding
	slots   chan struct{}
	step    Step
	// maxDeliver is the consumers' MaxDeliver: a message delivered that many times will not
	// come back, so it must not be handed back.
	maxDeliver int
	inflight   sync.WaitGroup
	// gate, when set, holds fetching while the destination refuses work and books a
	// rate-budget slot for each fetched message before the message is handled.
	gate gate
	// batch caps one fetch: at most this many messages (and never more than free slots).
	batch int
	// doorbell, when set, replaces long polls by waiting for bell: see the type's comment. It
	// is set before fetchLoop starts. rung holds a bit per source (index in sources) whose
	// doorbell rang since the last fetch round.
	doorbell bool
	bell     chan struct{}
	rung     atomic.Uint32
	// healthy is false while fetching fails (readiness).
	healthy atomic.Bool
	// tasks hands fetched messages to an idle handler goroutine (see handle); servers are
	// those goroutines, which end when quit closes.
	tasks   chan task
	quit    chan struct{}
	servers sync.WaitGroup
	// polls counts fetch requests that wait, rounds counts rounds of fetches, and idles the
	// times an idle runner began to wait for its bell (tests: the idle cost).
	polls, rounds, idles atomic.Int64
}

// binding is a bound durable consumer and the configuration to create it again if it is
// deleted under the running worker.
type binding struct {
	cfg broker.ConsumerConfig
	mu  sync.Mutex
	src Source
}

func (b *binding) source() Source {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.src
}

// gate is what a runner asks before fetching and before handling. *flowRunner implements it.
type gate interface {
	// ready blocks until fetching makes sense: the flow is not held (breaker open, paused,
	// blast-radius cap full) and not penalised by a 429's Retry-After.
	ready(ctx context.Context) error
	// held reports whether the flow must not be called now (breaker open, paused, capped): a
	// message fetched in the instant it became so is handed back.
	held() bool
	// admit books the next rate-budget slot if it comes within the given time, and returns
	// it. When the next slot is further away it books nothing (booked false) and returns when
	// the next slot could come.
	admit(ctx context.Context, within time.Duration) (slot time.Time, booked bool, err error)
}

func (w *Worker) newRunner(name string, sources []*binding, concurrency, maxDeliver int, step Step) *runner {
	r := &runner{w: w, name: name, sources: sources, slots: make(chan struct{}, concurrency), step: step, maxDeliver: maxDeliver, batch: concurrency,
		bell: make(chan struct{}, 1), tasks: make(chan task)}
	r.healthy.Store(true)
	return r
}

// ring says that work may be waiting on sources[source] (-1: on any). It never blocks.
func (r *runner) ring(source int) {
	if source >= 0 && source < 32 {
		r.rung.Or(1 << source)
	}
	select {
	case r.bell <- struct{}{}:
	default:
	}
}

// ringAfter rings the bell when a message handed back with delay is due again.
func (r *runner) ringAfter(delay time.Duration) {
	if !r.doorbell {
		return
	}
	time.AfterFunc(delay+redeliverySlack, func() { r.ring(-1) })
}

const (
	// pollWait is how long an idle runner without a doorbell long-polls its sources.
	pollWait        = 250 * time.Millisecond
	fetchErrorPause = time.Second
	// safetyPoll is how often an idle runner with a doorbell looks for work no ring
	// announced (a ring lost in a reconnect or dropped by a slow subscription); jittered
	// (half to one and a half of it) so that many flows do not poll together. A job handed
	// back with a delay needs none: the replica that handed it back rings itself when it is
	// due. 200 idle flows make 600 no-wait fetches per safetyPoll.
	safetyPoll = 30 * time.Second
	// bellGrace is how long a rung source is waited on when a ring found nothing yet: the
	// ring can come an instant before the stream has stored the job.
	bellGrace = 100 * time.Millisecond
	// redeliverySlack lets JetStream redeliver a message handed back with a delay before the
	// bell rings for it.
	redeliverySlack = 20 * time.Millisecond
)

func (r *runner) fetchLoop(fetchCtx, workCtx context.Context) {
	r.quit = make(chan struct{})
	defer r.servers.Wait()
	defer close(r.quit)
	defer r.inflight.Wait() // stop adding work first, then wait for what runs
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
		free := 1 + r.moreSlots(r.batch-1)
		msgs, err := r.next(fetchCtx, free)
		for range free - len(msgs) {
			<-r.slots
		}
		if len(msgs) == 0 {
			if fetchCtx.Err() != nil {
				return
			}
			if err != nil {
				select {
				case <-time.After(fetchErrorPause):
				case <-fetchCtx.Done():
					return
				}
			}
			continue
		}
		// From the moment of fetch: a message waiting for its slot is held, and must not
		// reach its ack deadline and be given to another replica meanwhile.
		beats := make([]func(), len(msgs))
		for i, msg := range msgs {
			beats[i] = r.heartbeat(msg)
		}
		for i, msg := range msgs {
			booked := false
			if r.gate != nil {
				ok, delay := r.waitSlot(fetchCtx, msg)
				if !ok {
					// The flow's budget or state turned: the rest of the batch goes back too.
					for j := i; j < len(msgs); j++ {
						beats[j]()
						if j > i {
							r.handBack(msgs[j], delay)
						}
						<-r.slots
					}
					break
				}
				booked = true
			}
			r.handle(workCtx, task{msg: msg, booked: booked, stopBeat: beats[i]})
		}
		if fetchCtx.Err() != nil {
			return
		}
	}
}

// task is a fetched message for a handler goroutine, holding one of the runner's slots.
type task struct {
	msg      Message
	booked   bool
	stopBeat func()
}

// handle runs t on an idle handler goroutine of the runner, or on a new one. Handler
// goroutines outlive their task for a while (serverIdle) to take the next: a goroutine per
// message would grow a fresh stack through the whole handler chain every time.
func (r *runner) handle(ctx context.Context, t task) {
	r.inflight.Add(1)
	select {
	case r.tasks <- t:
	default:
		r.servers.Go(func() { r.serve(ctx, t) })
	}
}

// serverIdle is how long a handler goroutine waits for its next task before it ends.
const serverIdle = 10 * time.Second

func (r *runner) serve(ctx context.Context, t task) {
	idle := time.NewTimer(serverIdle)
	defer idle.Stop()
	for {
		r.process(ctx, t.msg, t.booked, t.stopBeat)
		<-r.slots
		r.inflight.Done()
		idle.Reset(serverIdle)
		select {
		case t = <-r.tasks:
		case <-idle.C:
			return
		case <-r.quit:
			return
		}
	}
}

// moreSlots takes up to n more free slots without waiting, and says how many it took.
func (r *runner) moreSlots(n int) int {
	for i := range n {
		select {
		case r.slots <- struct{}{}:
		default:
			return i
		}
	}
	return n
}

// handBack naks msg for redelivery after delay, and rings the bell when it is due.
func (r *runner) handBack(msg Message, delay time.Duration) {
	if err := msg.Nak(delay); err != nil {
		r.w.log.Warn("could not hand back a message; it will be redelivered", slog.String("runner", r.name), slog.Any("error", err))
		return
	}
	r.ringAfter(delay)
}

// lastDelivery reports whether JetStream will not deliver msg again.
func (r *runner) lastDelivery(msg Message) bool {
	return r.maxDeliver > 0 && msg.Delivered() >= r.maxDeliver
}

// waitSlot books msg's rate-budget slot and waits for it. A slot further away than half the
// ack wait is not booked: the message is handed back with a delay of about the wait (and the
// gate holds fetching until then), so that no message is held long and no slot is booked for
// nobody. A message on its last delivery waits instead, with heartbeats: handing it back would
// end it. It reports whether msg may be handled; if not, msg was handed back after the delay
// it returns.
func (r *runner) waitSlot(ctx context.Context, msg Message) (bool, time.Duration) {
	within := r.w.cfg.AckWait / 2
	if r.lastDelivery(msg) {
		within = math.MaxInt64
	}
	if r.gate.held() {
		r.handBack(msg, 0) // the flow became held while this was fetched; ready() now waits
		return false, 0
	}
	slot, booked, err := r.gate.admit(ctx, within)
	if err != nil {
		r.handBack(msg, 0)
		if ctx.Err() == nil {
			r.w.log.Warn("rate budget unavailable", slog.String("runner", r.name), slog.Any("error", err))
		}
		return false, 0
	}
	wait := time.Until(slot)
	if !booked {
		r.w.log.Debug("rate-budget slot is far away: handing the message back until then", slog.String("runner", r.name),
			slog.Uint64("seq", msg.StreamSequence()), slog.Duration("delay", wait))
		r.handBack(msg, max(wait, 0))
		return false, max(wait, 0)
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			r.handBack(msg, 0) // the slot goes unused; the message comes back at once, elsewhere
			return false, 0
		}
	}
	if fr, ok := r.gate.(*flowRunner); ok {
		fr.metrics.rateLimitWait(ctx, fr.Endpoint.Name, wait)
	}
	return true, 0
}

// next returns up to free messages, the most urgent sources' first. When none is waiting it
// waits: for its bell (and returns nothing, so that the loop asks the gate again before the
// next round), or, without a bell, in a long poll of every source. It keeps the runner's
// health: false while a fetch fails, true once a round of fetches succeeds.
func (r *runner) next(ctx context.Context, free int) ([]Message, error) {
	rung := r.rung.Swap(0)
	r.rounds.Add(1)
	results := make([]fetchResult, len(r.sources))
	want := free
	for i, b := range r.sources { // what is waiting now, most urgent first
		results[i] = r.fetch(ctx, b, want, 0)
		want -= len(results[i].msgs)
		if want == 0 || results[i].err != nil {
			break
		}
	}
	if msgs, err := r.pick(ctx, results, free); len(msgs) > 0 || err != nil || ctx.Err() != nil {
		return msgs, err // a fetch failed: the loop pauses, then tries every source again
	}
	if r.doorbell {
		if rung != 0 { // the ring may have come before the stream stored the job
			for i, b := range r.sources {
				if rung&(1<<i) != 0 {
					msgs, err := r.pick(ctx, []fetchResult{r.fetch(ctx, b, free, bellGrace)}, free)
					if len(msgs) > 0 || err != nil || ctx.Err() != nil {
						return msgs, err
					}
					break
				}
			}
		}
		r.idle(ctx)
		return nil, nil
	}
	if len(r.sources) == 1 {
		results = []fetchResult{r.fetch(ctx, r.sources[0], free, pollWait)}
	} else {
		results = r.pollAll(ctx, free)
	}
	return r.pick(ctx, results, free)
}

// idle waits for the bell, a safety poll or the end of ctx.
func (r *runner) idle(ctx context.Context) {
	t := time.NewTimer(safetyPoll/2 + rand.N(safetyPoll))
	defer t.Stop()
	r.idles.Add(1)
	select {
	case <-r.bell:
	case <-t.C:
	case <-ctx.Done():
	}
}

type fetchResult struct {
	b    *binding
	msgs []Message
	err  error
}

func (r *runner) fetch(ctx context.Context, b *binding, max int, wait time.Duration) fetchResult {
	if wait > 0 {
		r.polls.Add(1)
	}
	msgs, err := b.source().Fetch(ctx, max, wait)
	return fetchResult{b, msgs, err}
}

// pollAll long-polls every source at once; the first message ends every poll. Every poll has
// ended when it returns.
func (r *runner) pollAll(ctx context.Context, free int) []fetchResult {
	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]fetchResult, len(r.sources))
	var wg sync.WaitGroup
	for i, b := range r.sources {
		wg.Go(func() {
			results[i] = r.fetch(pollCtx, b, free, pollWait)
			if len(results[i].msgs) > 0 {
				cancel()
			}
		})
	}
	wg.Wait()
	return results
}

// pick returns the messages of a round, most urgent source first, at most free of them, and
// hands back any beyond (they come back at once). err is the round's first fetch error, and
// the runner's health follows it. A source whose fetch failed is seen to (created again if it
// was deleted).
func (r *runner) pick(ctx context.Context, results []fetchResult, free int) (msgs []Message, err error) {
	for _, res := range results {
		if res.err != nil && ctx.Err() == nil && !errors.Is(res.err, context.Canceled) {
			if err == nil {
				err = res.err
			}
			r.fetchFailed(ctx, res.b, res.err)
		}
		for _, m := range res.msgs {
			if len(msgs) < free {
				msgs = append(msgs, m)
				continue
			}
			if nerr := m.Nak(0); nerr != nil {
				r.w.log.Debug("could not hand back a message; it returns after the ack wait", slog.String("runner", r.name), slog.Any("error", nerr))
			}
		}
	}
	if ctx.Err() != nil {
		if len(msgs) > 0 {
			return msgs, nil // fetched as the fetch was cancelled: they must be handled
		}
		return nil, ctx.Err()
	}
	r.healthy.Store(err == nil)
	return msgs, err
}

// fetchFailed marks the runner unready and, when the durable consumer was deleted, creates it
// again from its configuration. (Like a restart, a re-created intake consumer delivers the
// events still in the stream again; recorded jobs and dead letters de-duplicate them.)
func (r *runner) fetchFailed(ctx context.Context, b *binding, err error) {
	r.healthy.Store(false)
	if !errors.Is(err, broker.ErrConsumerNotFound) {
		r.w.log.Warn("fetch failed", slog.String("runner", r.name), slog.String("consumer", b.cfg.Durable), slog.Any("error", err))
		return
	}
	src, cerr := r.w.cfg.Broker.Consumer(ctx, b.cfg)
	if cerr != nil {
		r.w.log.Error("durable consumer was deleted and could not be created again; this replica takes no work from it",
			slog.String("runner", r.name), slog.String("consumer", b.cfg.Durable), slog.Any("error", cerr))
		return
	}
	b.mu.Lock()
	b.src = src
	b.mu.Unlock()
	r.w.log.Error("durable consumer was deleted under the running worker; created it again",
		slog.String("runner", r.name), slog.String("consumer", b.cfg.Durable))
}

// settleTimeout bounds the final ack/nak/term, which run even after shutdown began.
const settleTimeout = 10 * time.Second

func (r *runner) process(ctx context.Context, msg Message, booked bool, stopBeat func()) {
	defer r.w.metrics.track(ctx, r.name)() // remediator_inflight
	d := &Delivery{
		Msg: msg, Subject: msg.Subject(), Data: msg.Data(), Header: msg.Headers(),
		Delivered: msg.Delivered(), Sequence: msg.StreamSequence(), Published: msg.Published(),
		Stage: r.name, LastDelivery: r.lastDelivery(msg), SlotBooked: booked,
	}
	res := r.safeHandle(ctx, d)
	stopBeat()
	r.settle(d, res)
}

// heartbeat tells JetStream every third of AckWait that msg is being worked on, until the
// returned function is called: two beats may be lost before JetStream gives the message to
// another replica.
func (r *runner) heartbeat(msg Message) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
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
	var once sync.Once
	return func() { once.Do(func() { close(done); <-stopped }) }
}

// safeHandle is the last line of defence: a panic outside the recover middleware is logged and
// the message is nak'ed, never lost and never crashing the process.
func (r *runner) safeHandle(ctx context.Context, d *Delivery) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			r.w.log.Error("panic outside the handler chain", slog.String("runner", r.name), slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			res = Result{Err: Retry(0, "internal error", fmt.Errorf("panic: %v", p))}
		}
	}()
	return r.step.Handle(ctx, d)
}

// settleAction is what is done with a message once handled.
type settleAction int

const (
	settleNak  settleAction = iota // hand back for redelivery after delay
	settleAck                      // done: recorded success
	settleTerm                     // never again: recorded dead letter
)

type settlement struct {
	action settleAction
	delay  time.Duration // nak
	reason string        // term
}

// decideSettlement is the settle table. It acks or terminates only what was recorded; anything
// else is nak'ed: after the delay a retry asked for, at once when shutdown interrupted it,
// else after backoff.
func decideSettlement(res Result, backoff time.Duration) settlement {
	if res.Recorded {
		if res.Err == nil {
			return settlement{action: settleAck}
		}
		if dl, ok := asDeadLetter(res.Err); ok {
			return settlement{action: settleTerm, reason: string(dl.Reason)}
		}
	}
	if !res.Recorded && (errors.Is(res.Err, errShutdown) || errors.Is(res.Err, context.Canceled)) {
		return settlement{action: settleNak} // comes back at once, elsewhere
	}
	if re, ok := asRetry(res.Err); ok && re.Delay > 0 {
		return settlement{action: settleNak, delay: re.Delay}
	}
	return settlement{action: settleNak, delay: backoff}
}

// settle acks, naks or terminates the message by the settle table, on a context of its own:
// it runs even after shutdown began.
func (r *runner) settle(d *Delivery, res Result) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	s := decideSettlement(res, r.w.retryDelay(d.Delivered))
	var err error
	switch s.action {
	case settleAck:
		err = d.Msg.Ack(ctx)
	case settleTerm:
		err = d.Msg.Term(s.reason)
	default:
		err = d.Msg.Nak(s.delay)
		if err == nil {
			r.ringAfter(s.delay)
		}
	}
	if err != nil {
		// The message will be redelivered after AckWait; the records carry de-duplication ids.
		r.w.log.Warn("could not settle message; it will be redelivered", slog.String("runner", r.name), slog.Uint64("seq", d.Sequence), slog.Any("error", err))
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
