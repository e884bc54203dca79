package worker

import (
	"context"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/status"
)

// Delivery is one delivery of a message, and what the handlers learn about it.
type Delivery struct {
	Msg       Message
	Subject   string
	Data      []byte
	Header    map[string][]string
	Delivered int
	Sequence  uint64
	Published time.Time
	// Stage is "intake" or "dispatch/<flow>".
	Stage string
	// LastDelivery is set by the runner when JetStream will not deliver the message again
	// (Delivered has reached the consumer's MaxDeliver): a failure that would be retried is
	// dead-lettered instead.
	LastDelivery bool
	// SlotBooked is set by the runner when it already waited for a rate-budget slot for the
	// first invocation of this delivery (dispatch).
	SlotBooked bool

	// Event is set by intake once the document is decoded.
	Event *event.Event
	// Job is set by dispatch once the job is decoded.
	Job *Job
	// Attempt reports the last invocation attempt made (dispatch), for the status record.
	Attempt *status.Record
	// History holds every attempt of the current job generation (dispatch).
	History []status.Attempt
}

// Handler handles one delivery. See the package documentation for what its error means.
type Handler interface {
	Handle(ctx context.Context, d *Delivery) error
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, d *Delivery) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, d *Delivery) error { return f(ctx, d) }

// Middleware wraps a handler.
type Middleware func(Handler) Handler

// Chain wraps h in mw; the first middleware is the outermost.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// Result is what the runner settles: the outcome of a delivery and whether it is stored.
type Result struct {
	// Err is the outcome: nil for success, a *DeadLetterError, a *RetryError, or any other
	// error (retried).
	Err error
	// Recorded says the outcome is stored (terminal job state, status, dead letter, jobs):
	// only then may the runner ack or terminate the message. An unrecorded result is nak'ed
	// and comes back.
	Recorded bool
}

// Step is a stage's handler once its results are recorded: what the runner calls. The record
// middleware turns a [Handler] into a Step; [Worker.Trace] and [Worker.Log] wrap Steps.
type Step interface {
	Handle(ctx context.Context, d *Delivery) Result
}

// StepFunc adapts a function to [Step].
type StepFunc func(ctx context.Context, d *Delivery) Result

// Handle calls f.
func (f StepFunc) Handle(ctx context.Context, d *Delivery) Result { return f(ctx, d) }
