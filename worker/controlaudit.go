package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/seal"
)

// ControlAuditSubject is where the worker records every change it sees to [ControlsBucket].
const ControlAuditSubject = "remediation.audit.controls"

// UnknownWriter is the writer of a control change that names none it can prove: a value that
// is not sealed with a record key (ignored), or a delete.
const UnknownWriter = "unknown writer"

// ControlAudit is the audit record of one change to [ControlsBucket], however it was made
// (remediator's CLI, the console, or `nats kv put` by hand): what the key held before, what it
// holds now, and who set it. Every replica writes it; its message id (key and revision) keeps
// one per change.
type ControlAudit struct {
	Action string `json:"action"` // "controls.change"
	Key    string `json:"key"`
	// Writer is the New value's By when the value is sealed; otherwise [UnknownWriter].
	Writer string `json:"writer"`
	// Ignored says the value was not sealed with a record key: the switch kept Old.
	Ignored bool `json:"ignored,omitempty"`
	// Old and New are the switch before and after; nil is off.
	Old *Control `json:"old,omitempty"`
	New *Control `json:"new,omitempty"`
	// Deleted: the key was deleted (the switch turned off).
	Deleted bool `json:"deleted,omitempty"`
	// Value is an ignored value as written (at most 512 bytes), for the investigation.
	Value string `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
	// Revision is the change's revision in the bucket; ChangedAt when NATS stored it.
	Revision  uint64    `json:"revision,omitempty"`
	ChangedAt time.Time `json:"changedAt,omitzero"`
	// AtStart: an ignored value the worker found when it started, rather than a change it saw.
	AtStart bool      `json:"atStart,omitempty"`
	SeenAt  time.Time `json:"seenAt"`
}

// auditControl records a change to the controls bucket on the audit stream, and raises an
// alert for a value that does not verify.
func (w *Worker) auditControl(ctx context.Context, ch controlChange, e broker.KVEntry, atStart bool) {
	if ch.Err == nil && (ch.Deleted && ch.Old == nil || !ch.Deleted && sameControl(ch.Old, ch.New)) {
		return // nothing changed (a watch started again over the same values)
	}
	rec := ControlAudit{
		Action: "controls.change", Key: ch.Key, Writer: UnknownWriter, Old: ch.Old, New: ch.New, Deleted: ch.Deleted,
		Revision: e.Revision, ChangedAt: e.Created.UTC(), AtStart: atStart, SeenAt: time.Now().UTC(),
	}
	switch {
	case ch.Err != nil:
		rec.Ignored, rec.Error, rec.Value = true, ch.Err.Error(), clip(ch.Raw, 512)
		w.log.ErrorContext(ctx, "switch value ignored: it is not sealed with a record key, so remediator did not write it; the switch keeps its previous state",
			slog.String("bucket", ControlsBucket), slog.String("control", ch.Key), slog.Uint64("revision", e.Revision), slog.Any("error", ch.Err))
		w.countUnverified(ctx, unverifiedControl)
	case !ch.Deleted && ch.New != nil:
		rec.Writer = ch.New.By
	}
	msgID := ""
	if e.Revision != 0 {
		msgID = fmt.Sprintf("controls:%s:%d", ch.Key, e.Revision)
	}
	ctx, cancel := finalContext(ctx)
	defer cancel()
	if _, err := w.publishRecord(ctx, ControlAuditSubject, msgID, rec); err != nil {
		w.log.ErrorContext(ctx, "could not record a switch change on the audit stream", slog.String("control", ch.Key), slog.Any("error", err))
	}
}

func sameControl(a, b *Control) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.By == b.By && a.At.Equal(b.At) && a.Reason == b.Reason
}

// clip returns b as text, at most n bytes, cut on a rune boundary.
func clip(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	b = b[:n]
	for len(b) > 0 && !utf8.Valid(b) {
		b = b[:len(b)-1]
	}
	return string(b) + "…"
}

// changedControl is the controls watch's audit hook.
func (w *Worker) changedControl(ctx context.Context) func(controlChange, broker.KVEntry, bool) {
	return func(ch controlChange, e broker.KVEntry, atStart bool) { w.auditControl(ctx, ch, e, atStart) }
}

// Switch is one switch set in [ControlsBucket], as an operator sees it.
type Switch struct {
	Key string `json:"key"`
	// Kind is "pause" or "dryrun"; Flow the flow it holds ([AllFlows] for every flow).
	Kind string `json:"kind"`
	Flow string `json:"flow"`
	// Control says who set it, when and why (zero when Unverified).
	Control Control `json:"control"`
	// Unverified says why the value does not verify: remediator did not write it, and the
	// workers ignore it. "" for a switch in force.
	Unverified string `json:"unverified,omitempty"`
}

// ControlReader is what [ReadSwitches] needs of the controls bucket; *broker.KV implements it.
type ControlReader interface {
	Keys(ctx context.Context) ([]string, error)
	Get(ctx context.Context, key string) ([]byte, uint64, error)
}

var _ ControlReader = (*broker.KV)(nil)

// ReadSwitches lists the switches set in the controls bucket, sorted by key, each verified
// with keys as the workers verify it: those with Unverified set are not in force.
func ReadSwitches(ctx context.Context, kv ControlReader, keys *seal.Keyring) ([]Switch, error) {
	names, err := kv.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := []Switch{}
	for _, key := range names {
		value, _, err := kv.Get(ctx, key)
		if errors.Is(err, broker.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		kind, flow, _ := strings.Cut(key, ".")
		sw := Switch{Key: key, Kind: kind, Flow: flow}
		if sw.Control, err = DecodeControl(keys, key, value); err != nil {
			sw.Unverified = err.Error()
		}
		out = append(out, sw)
	}
	slices.SortFunc(out, func(a, b Switch) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}
