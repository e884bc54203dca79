package broker

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors. Errors returned by this package wrap them (match with
// [errors.Is]) and add what was asked for and what to do about it.
var (
	// ErrStreamNotFound means the stream does not exist, or no stream
	// captures the subject that was published to.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrConsumerNotFound means the durable consumer no longer exists.
	ErrConsumerNotFound = errors.New("consumer not found")
	// ErrMessageNotFound means the stream holds no message with that sequence.
	ErrMessageNotFound = errors.New("message not found")
	// ErrKeyNotFound means the key does not exist or was deleted.
	ErrKeyNotFound = errors.New("key not found")
	// ErrKeyExists is returned by [KV.Create] when the key already has a value.
	ErrKeyExists = errors.New("key exists")
	// ErrRevisionMismatch is returned by [KV.Update] when the key's latest
	// revision is not the one given (someone else wrote it first).
	ErrRevisionMismatch = errors.New("key revision mismatch")
)

// ProvisionError reports a stream that exists with a setting JetStream cannot
// change in place. [Broker.Provision] returns it instead of silently running
// with a configuration that differs from the one asked for.
type ProvisionError struct {
	Stream  string // stream name, e.g. REMEDIATION_EVENTS
	Setting string // "storage" or "retention"
	Current string // value of the existing stream
	Wanted  string // value asked for
	Fix     string // what the operator can do
}

func (e *ProvisionError) Error() string {
	return fmt.Sprintf("stream %s exists with %s %q but %q is wanted, and JetStream cannot change %s in place: %s",
		e.Stream, e.Setting, e.Current, e.Wanted, e.Setting, e.Fix)
}

// streamErr maps a jetstream error about a stream to this package's errors.
// op says what was being done ("get message #4"), without the stream name.
func streamErr(op, stream string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%s: %w: %s does not exist — streams are created by `remediator run` (broker.Provision); check the NATS account and nats-url", op, ErrStreamNotFound, stream)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("%s: %w on stream %s", op, ErrConsumerNotFound, stream)
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return fmt.Errorf("%s: %w: stream %s has no such message — it was deleted, expired (max age) or never written", op, ErrMessageNotFound, stream)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("%s (stream %s): JetStream is not enabled on this NATS server or account — start nats-server with -js, or use the embedded server: %v", op, stream, err)
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%s (stream %s): no JetStream responded — is JetStream enabled on the NATS server (nats-server -js)? %v", op, stream, err)
	default:
		return fmt.Errorf("%s (stream %s): %w", op, stream, err)
	}
}

// kvErr maps a jetstream key-value error to this package's errors.
func kvErr(op, bucket, key string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return fmt.Errorf("kv %s %s/%s: %w", op, bucket, key, ErrKeyNotFound)
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return fmt.Errorf("kv %s %s/%s: %w: it was written since that revision was read — read it again and retry", op, bucket, key, ErrRevisionMismatch)
	case errors.Is(err, jetstream.ErrKeyExists):
		return fmt.Errorf("kv %s %s/%s: %w", op, bucket, key, ErrKeyExists)
	case errors.Is(err, jetstream.ErrInvalidKey):
		return fmt.Errorf("kv %s %s: invalid key %q: keys are dot-separated tokens of letters, digits, '-', '_', '=', '/'", op, bucket, key)
	default:
		return fmt.Errorf("kv %s %s/%s: %w", op, bucket, key, err)
	}
}

// contains reports whether err's text contains s, case-insensitively. Some
// server errors (listen failures) only exist as text.
func contains(err error, s string) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(s))
}
