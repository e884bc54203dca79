package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sentinel errors. Errors returned by this package wrap them (match with
// [errors.Is]) and add what was asked for and what to do about it.
//
// This package decides what an error is by its type or by the JetStream API
// error code the server sent, never by its text: texts change between server
// versions and differ between a single server and a cluster.
var (
	// ErrStreamNotFound means the stream does not exist, or no stream
	// captures the subject that was published to.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrConsumerNotFound means the durable consumer no longer exists.
	// [Consumer.Fetch] returns it when the consumer was deleted under it;
	// [Consumer.Recreate] creates it again from its configuration.
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
	// ErrPayloadTooLarge means a publish was larger than the server's
	// max_payload ([Broker.MaxPayload]) or the stream's maximum message size.
	// It is permanent: retrying the same message can never succeed.
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrAuth means the server refused the connection's credentials (or
	// their absence).
	ErrAuth = errors.New("authentication refused")
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

// JetStream API error codes the server sends that nats.go has no constant
// for (nats-server's server/jetstream_errors_generated.go).
const (
	codeClusterIncomplete     jetstream.ErrorCode = 10004 // JSClusterIncompleteErr
	codeClusterNoPeers        jetstream.ErrorCode = 10005 // JSClusterNoPeersErr: "no suitable peers for placement"
	codeClusterNotActive      jetstream.ErrorCode = 10006 // JSClusterNotActiveErr
	codeClusterNotAssigned    jetstream.ErrorCode = 10007 // JSClusterNotAssignedErr
	codeClusterNotAvail       jetstream.ErrorCode = 10008 // JSClusterNotAvailErr: "JetStream system temporarily unavailable"
	codeClusterNotLeader      jetstream.ErrorCode = 10009 // JSClusterNotLeaderErr
	codeInsufficientResources jetstream.ErrorCode = 10023 // JSInsufficientResourcesErr
	codeAccountResources      jetstream.ErrorCode = 10002 // JSAccountResourcesExceededErr
	codeStorageResources      jetstream.ErrorCode = 10047 // JSStorageResourcesExceededErr
	codeMemoryResources       jetstream.ErrorCode = 10028 // JSMemoryResourcesExceededErr
	codeMsgDeleteFailed       jetstream.ErrorCode = 10057 // JSStreamMsgDeleteFailedF
	codeStreamSubjectOverlap  jetstream.ErrorCode = 10065 // JSStreamSubjectOverlapErr
	codeReplicasNotSupported  jetstream.ErrorCode = 10074 // JSStreamReplicasNotSupportedErr
	codeWQMultipleUnfiltered  jetstream.ErrorCode = 10099 // JSConsumerWQMultipleUnfilteredErr
	codeWQConsumerNotUnique   jetstream.ErrorCode = 10100 // JSConsumerWQConsumerNotUniqueErr
	codeStreamOffline         jetstream.ErrorCode = 10118 // JSStreamOfflineErr
	codeConsumerOffline       jetstream.ErrorCode = 10119 // JSConsumerOfflineErr
)

// apiCode returns the JetStream API error code carried by err, if any.
func apiCode(err error) (jetstream.ErrorCode, bool) {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr != nil {
		return apiErr.ErrorCode, true
	}
	return 0, false
}

// hasCode reports whether err carries one of the JetStream API error codes.
func hasCode(err error, codes ...jetstream.ErrorCode) bool {
	c, ok := apiCode(err)
	if !ok {
		return false
	}
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// transient reports whether a JetStream request failed for a reason that
// passes by itself: a request that timed out, no JetStream responding yet (a
// server still starting, JetStream still recovering its store), or a cluster
// that has no meta or stream leader at the moment (elections after a fresh
// start or a lost node). Such a request is worth retrying with backoff; any
// other error is an answer and retrying it would only delay the failure.
//
// "No suitable peers for placement" is counted as transient: on a fresh
// cluster the meta leader places nothing until it has heard from its peers.
// On a cluster that is really too small for the replicas asked, it stays,
// and the caller gets it when ctx ends.
func transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionReconnecting):
		return true
	default:
		return hasCode(err, codeClusterIncomplete, codeClusterNoPeers, codeClusterNotActive, codeClusterNotAssigned,
			codeClusterNotAvail, codeClusterNotLeader, codeStreamOffline, codeConsumerOffline)
	}
}

// streamErr maps a jetstream error about a stream to this package's errors.
// op says what was being done ("get message #4"), without the stream name.
func streamErr(op, stream string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("%s: %w: %s does not exist — streams are created by `remediator run` (broker.Provision); check the NATS account and nats-url", op, ErrStreamNotFound, stream)
	case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDoesNotExist):
		return fmt.Errorf("%s: %w on stream %s", op, ErrConsumerNotFound, stream)
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return fmt.Errorf("%s: %w: stream %s has no such message — it was deleted, expired (max age) or never written", op, ErrMessageNotFound, stream)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("%s (stream %s): JetStream is not enabled for this NATS account — enable it for the account, or use the embedded server: %w", op, stream, err)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("%s (stream %s): JetStream is not enabled on this NATS server — start nats-server with -js, or use the embedded server: %w", op, stream, err)
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%s (stream %s): no JetStream responded — is JetStream enabled on the NATS server (nats-server -js)? %w", op, stream, err)
	case hasCode(err, codeClusterIncomplete, codeClusterNotActive, codeClusterNotAssigned, codeClusterNotAvail, codeClusterNotLeader):
		return fmt.Errorf("%s (stream %s): the NATS cluster has no JetStream leader at the moment (still electing, or too few servers up): %w", op, stream, err)
	default:
		return fmt.Errorf("%s (stream %s): %w", op, stream, err)
	}
}

// kvErr maps a jetstream key-value error to this package's errors. op is the
// operation ("get", "create", "update"…): a wrong-last-sequence answer
// (codes 10071 and, on a replicated bucket, 10164) means "the key exists" to
// Create and "someone wrote first" to Update.
func kvErr(op, bucket, key string, err error) error {
	wrongLastSeq := hasCode(err, jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return fmt.Errorf("kv %s %s/%s: %w", op, bucket, key, ErrKeyNotFound)
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), op == "update" && wrongLastSeq:
		return fmt.Errorf("kv %s %s/%s: %w: it was written since that revision was read — read it again and retry", op, bucket, key, ErrRevisionMismatch)
	case errors.Is(err, jetstream.ErrKeyExists), op == "create" && wrongLastSeq:
		return fmt.Errorf("kv %s %s/%s: %w", op, bucket, key, ErrKeyExists)
	case errors.Is(err, jetstream.ErrInvalidKey):
		return fmt.Errorf("kv %s %s: invalid key %q: keys are dot-separated tokens of letters, digits, '-', '_', '=', '/'", op, bucket, key)
	case tooLarge(err):
		return fmt.Errorf("kv %s %s/%s: %w: %w", op, bucket, key, ErrPayloadTooLarge, err)
	default:
		return fmt.Errorf("kv %s %s/%s: %w", op, bucket, key, err)
	}
}

// tooLarge reports whether a publish failed because the message is bigger
// than the server accepts (client-side max_payload check, or the stream's
// max_msg_size).
func tooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum)
}
