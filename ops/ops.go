package ops

import (
	"errors"
	"os"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/dlq"
	"github.com/remediator/remediator/seal"
)

// Options configure an [Ops].
type Options struct {
	// Server names the NATS server in error messages (passwords redacted). Default: none.
	Server string
	// Host is recorded in audit records. Default: os.Hostname.
	Host string
	// DeadLetters is the dead-letter store to use. Default: dlq.New over the same connection.
	DeadLetters *dlq.Store
	// Keys are the record keys: switches are written sealed with them (workers ignore an
	// unsealed switch), and records read back are checked against them. Without keys no
	// switch can be set, and records are not verified.
	Keys *seal.Keyring
}

// Ops reads and operates a running remediator through its JetStream streams and buckets. It
// is safe for concurrent use.
type Ops struct {
	b      *broker.Broker
	dlq    *dlq.Store
	server string
	host   string
	keys   *seal.Keyring
}

// New returns an Ops over b.
func New(b *broker.Broker, opts Options) *Ops {
	o := &Ops{b: b, dlq: opts.DeadLetters, server: opts.Server, host: opts.Host, keys: opts.Keys}
	if o.dlq == nil {
		o.dlq = dlq.New(b, dlq.Options{Server: opts.Server, Host: opts.Host, Keys: opts.Keys})
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

// unverified says why a stored record does not verify with the record keys ("" when it does,
// or when there are no keys to check with).
func (o *Ops) unverified(subject string, data []byte, header map[string][]string) string {
	if o.keys == nil {
		return ""
	}
	if _, err := o.keys.VerifyHeader(subject, data, header); err != nil {
		return err.Error()
	}
	return ""
}
