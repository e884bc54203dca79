package ops

import (
	"errors"
	"os"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/dlq"
)

// Options configure an [Ops].
type Options struct {
	// Server names the NATS server in error messages (passwords redacted). Default: none.
	Server string
	// Host is recorded in audit records. Default: os.Hostname.
	Host string
	// DeadLetters is the dead-letter store to use. Default: dlq.New over the same connection.
	DeadLetters *dlq.Store
}

// Ops reads and operates a running remediator through its JetStream streams and buckets. It
// is safe for concurrent use.
type Ops struct {
	b      *broker.Broker
	dlq    *dlq.Store
	server string
	host   string
}

// New returns an Ops over b.
func New(b *broker.Broker, opts Options) *Ops {
	o := &Ops{b: b, dlq: opts.DeadLetters, server: opts.Server, host: opts.Host}
	if o.dlq == nil {
		o.dlq = dlq.New(b, dlq.Options{Server: opts.Server, Host: opts.Host})
	}
	if o.host == "" {
		o.host, _ = os.Hostname()
	}
	return o
}

// DeadLetters is the dead-letter store: list, show, replay and purge.
func (o *Ops) DeadLetters() *dlq.Store { return o.dlq }

// explain turns a missing stream into a [dlq.MissingStreamError] that says what to do.
func (o *Ops) explain(err error, stream string) error {
	if !errors.Is(err, broker.ErrStreamNotFound) {
		return err
	}
	return &dlq.MissingStreamError{Stream: stream, Server: o.server, Err: err}
}
