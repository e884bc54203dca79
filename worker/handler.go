package worker

import (
	"context"
	"time"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/status"
)

// Message is a JetStream message as the worker needs it. *broker.Message implements it.
type Message interface {
	Subject() string
	Data() []byte
	Headers() map[string][]string
	Delivered() int
	StreamSequence() uint64
	Published() time.Time
	Ack(ctx context.Context) error
	Nak(delay time.Duration) error
	Term(reason string) error
	InProgress() error
}

// Delivery is one delivery of a message, and what the handlers learn about it.
type Delivery struct {
	Msg       Message
	Subject   string
	Data      []byte
	Header    map[string][]string
	Delivered int
	Sequence  uint64
	Published time.Time
	// Stage is "intake" or "dispatch".
	Stage string

	// Event is set by intake once the document is decoded.
	Event *event.Event
	// Job is set by dispatch once the job is decoded.
	Job *Job
	// Attempt reports the last invocation attempt made (dispatch), for the status record.
	Attempt *status.Record
	// History holds every attempt of the current job generation (dispatch).
	History []status.Attempt
	// recorded is set by the record middleware once the outcome is stored.
	recorded bool
	// dispatch carries job state from the dispatch handler to its recorder.
	dispatch *dispatchState
	// prepaid: the runner already spent a rate-budget slot for the first attempt.
	prepaid bool
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
