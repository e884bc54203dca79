package dlq

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/seal"
)

// auditAction is the last part of an audit subject: remediation.audit.<action>.
type auditAction string

const (
	auditReplay auditAction = "dlq.replay"
	auditPurge  auditAction = "dlq.purge"
)

func (a auditAction) subject() string { return "remediation.audit." + string(a) }

// Audit subjects of replays and purges (stream REMEDIATION_AUDIT).
const (
	AuditReplaySubject = "remediation.audit." + string(auditReplay)
	AuditPurgeSubject  = "remediation.audit." + string(auditPurge)
)

// AuditRecord is one JSON record on remediation.audit.<action>. A command acting on more than
// [AuditBatch] dead letters writes one record per batch, all with the same ID.
type AuditRecord struct {
	Action   string    `json:"action"` // dlq.replay or dlq.purge
	ID       string    `json:"id"`     // the same on every part of one command
	User     string    `json:"user"`   // the operator
	Host     string    `json:"host,omitempty"`
	At       time.Time `json:"at"`
	Selector string    `json:"selector"` // what the operator asked for
	Total    int       `json:"total"`    // dead letters the command acts on
	Part     int       `json:"part"`
	Parts    int       `json:"parts"`
	// Count and Sequences are the dead letters of this part (REMEDIATION_DLQ sequences).
	Count     int      `json:"count"`
	Sequences []uint64 `json:"sequences"`
	// EventSequences are where a replay's events were stored in REMEDIATION_EVENTS.
	EventSequences []uint64 `json:"eventSequences,omitempty"`
	// Rate is a replay's publish rate limit, per second.
	Rate float64 `json:"rate,omitempty"`
}

func (s *Store) newAudit(action auditAction, user, selector string, total, parts int) *AuditRecord {
	now := time.Now().UTC()
	return &AuditRecord{
		Action: string(action), ID: fmt.Sprintf("%s-%d", strings.TrimPrefix(string(action), "dlq."), now.UnixNano()),
		User: user, Host: s.host, Selector: selector, Total: total, Parts: parts,
	}
}

// recordAudit stores part of an audit record. It is written even when ctx is cancelled: what
// it records has happened.
func (s *Store) recordAudit(ctx context.Context, a *AuditRecord, part int, seqs, events []uint64) error {
	rec := *a
	rec.At, rec.Part, rec.Count, rec.Sequences, rec.EventSequences = time.Now().UTC(), part, len(seqs), seqs, events
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	subject := auditAction(a.Action).subject()
	var h map[string][]string
	if s.keys != nil { // signed, as the worker's records are
		h = map[string][]string{seal.Header: {s.keys.SignRecord(subject, data)}}
	}
	if _, err := s.b.Publish(ctx, subject, data, broker.PublishOptions{MsgID: fmt.Sprintf("audit:%s:%d", a.ID, part), Header: h}); err != nil {
		return fmt.Errorf("record the audit on %s: %w", subject, s.explain(err, broker.StreamAudit))
	}
	return nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
