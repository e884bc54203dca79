package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/metric"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/status"
)

// Record MACs (issue 13). Everything the worker writes for itself is signed with the primary
// record key of Config.Keys: stream records (dispatch jobs, status records, dead letters,
// audit records) in the Remediator-Mac header, bound to subject and body; KV values (job
// records, switch values) in a sealed envelope bound to bucket and key. What it reads back is
// verified before it is acted on:
//
//   - a dispatch job that does not verify is never run: it is dead-lettered as unverified,
//     keeping its bytes, with an error log and remediator_records_unverified_total;
//   - a job record that does not verify is ignored, as if absent (and overwritten by the next
//     write), with an alert: a forged terminal record cannot make an event vanish;
//   - a switch value that does not verify is ignored, with an alert and an audit record.
//
// Job keys are a keyed hash of (event kind, event id, flow) with the primary key, so nobody
// without a key can predict the key of a future event's job record. At rotation (a new key
// first, the old one kept), jobs already in the stream keep the key and the MAC they were
// written with: both still verify, and their records (sealed with either key) stay theirs.
// A duplicate of an event first seen before the rotation gets a new job key, so it is not
// recognised as a duplicate by its job record; the flow then gets a new idempotency key.
// Retire an old key only once nothing it signed is still needed (streams.maxAge).

// metricUnverified counts records refused because their MAC does not verify.
const metricUnverified = "remediator.records.unverified"

// Kinds of record the worker verifies, the kind label of metricUnverified.
const (
	unverifiedJob       = "dispatch_job"
	unverifiedJobRecord = "job_record"
	unverifiedControl   = "control"
)

func newUnverifiedCounter(mp metric.MeterProvider) (metric.Int64Counter, error) {
	return mp.Meter("github.com/remediator/remediator/worker").Int64Counter(metricUnverified,
		metric.WithDescription("Records refused because their MAC is missing or does not verify with the record keys, by kind: dispatch_job (dead-lettered as unverified, never run), job_record (ignored), control (switch value ignored). Alert on any: someone writes on NATS as remediator."))
}

func (w *Worker) countUnverified(ctx context.Context, kind string) {
	if w.unverifiedCount != nil {
		w.unverifiedCount.Add(ctx, 1, metric.WithAttributes(labelKind.String(kind)))
	}
}

// sign sets the MAC of a record on subject in its header h.
func (w *Worker) sign(subject string, data []byte, h map[string][]string) {
	h[seal.Header] = []string{w.cfg.Keys.SignRecord(subject, data)}
}

// jobKey derives the key of the (event, flow) pair: a keyed hash, so that it is safe as a KV
// key and a header value and cannot be predicted without a record key.
func jobKey(keys *seal.Keyring, kind event.Kind, eventID, flow string) string {
	return keys.Hash(string(kind), eventID, flow)
}

// verifyJob checks the MAC of a dispatch job delivery. A job that does not verify is
// dead-lettered as unverified, never run.
func (w *Worker) verifyJob(ctx context.Context, d *Delivery) error {
	if _, err := w.cfg.Keys.VerifyHeader(d.Subject, d.Data, d.Header); err != nil {
		w.log.ErrorContext(ctx, "dispatch job refused: its MAC does not verify, so remediator did not write it (or it was altered, or signed with a retired record key); dead-lettered as unverified, not run",
			slog.String("subject", d.Subject), slog.Uint64("seq", d.Sequence), slog.Any("error", err))
		w.countUnverified(ctx, unverifiedJob)
		return DeadLetter(status.ReasonUnverified, fmt.Errorf("dispatch job not verified: %w", err))
	}
	return nil
}

// checkJob is dispatch's second look at a verified job: its subject and key are the ones
// intake derives, and the configuration still sends its event kind to its flow through its
// rule and grants its principal the flow. It reads nothing: the job carries what it needs.
func (w *Worker) checkJob(job *Job, subject string) error {
	if want := DispatchSubject(job.Flow, job.Priority); subject != want {
		return DeadLetterf(status.ReasonUnverified, "dispatch job for flow %q at priority %q arrived on %q, not %q", job.Flow, job.Priority, subject, want)
	}
	if job.Version >= jobVersion && w.cfg.Keys.HashedBy(job.Key, string(job.EventKind), job.EventID, job.Flow) == "" {
		return DeadLetterf(status.ReasonUnverified, "dispatch job key %q is not derived from its event and flow with any record key held", job.Key)
	}
	if err := w.cfg.Router.CheckJob(job.EventKind, job.Rule, job.Flow, job.Principal, job.PrincipalGroups); err != nil {
		return DeadLetter(status.ReasonUnauthorized, fmt.Errorf("dispatch re-check against the configuration: %w", err))
	}
	return nil
}

// sealJobState encodes a job record for the KV key.
func (w *Worker) sealJobState(key string, st jobState) ([]byte, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	return w.cfg.Keys.SealValue(jobsBucket, key, b)
}

// openJobState decodes a job record read from the KV key. A record that does not verify, or
// cannot be read, is treated as absent (the zero state): reported, never obeyed.
func (w *Worker) openJobState(ctx context.Context, key string, sealed []byte) jobState {
	var st jobState
	b, _, err := w.cfg.Keys.OpenValue(jobsBucket, key, sealed)
	if err != nil {
		w.log.ErrorContext(ctx, "job record ignored: its MAC does not verify, so remediator did not write it (or it was altered); the job runs as if it had none",
			slog.String("bucket", jobsBucket), slog.String("key", key), slog.Any("error", err))
		w.countUnverified(ctx, unverifiedJobRecord)
		return st
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return jobState{} // unreadable state: start afresh rather than block the job
	}
	return st
}

// EncodeControl returns the value to store under key in [ControlsBucket] for the switch c:
// c sealed with the primary record key and bound to the key. Workers ignore (and audit) a
// value that is not sealed so. Every writer of switches (the CLI, the console) stores this.
func EncodeControl(keys *seal.Keyring, key string, c Control) ([]byte, error) {
	if keys == nil {
		return nil, errors.New("switch value: no record keys to sign it with")
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return keys.SealValue(ControlsBucket, key, b)
}

// DecodeControl verifies and decodes a value read from key in [ControlsBucket]. An error
// matching [seal.ErrUnverified] means remediator did not write it.
func DecodeControl(keys *seal.Keyring, key string, value []byte) (Control, error) {
	var c Control
	if keys == nil {
		return c, errors.New("no record keys to verify it with")
	}
	b, _, err := keys.OpenValue(ControlsBucket, key, value)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("switch value of %s: %w", key, err)
	}
	return c, nil
}
