package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/remediator/remediator/broker"
)

// PurgeResult says what a purge did.
type PurgeResult struct {
	Selector  string   `json:"selector"`
	Purged    int      `json:"purged"`
	Sequences []uint64 `json:"sequences"`
	AuditID   string   `json:"auditId,omitempty"`
}

// Purge deletes the dead letters seqs for good, in batches of [AuditBatch]: each batch is
// recorded on remediation.audit.dlq.purge (who: operator; what was asked: selector) before its
// letters are deleted. A letter already gone is not an error. With no seqs it does nothing.
func (s *Store) Purge(ctx context.Context, selector string, seqs []uint64, operator string) (PurgeResult, error) {
	res := PurgeResult{Selector: selector}
	if len(seqs) == 0 {
		return res, nil
	}
	a := s.newAudit(auditPurge, operator, selector, len(seqs), (len(seqs)+AuditBatch-1)/AuditBatch)
	res.AuditID = a.ID
	part := 0
	for batch := range slices.Chunk(seqs, AuditBatch) {
		part++
		if err := s.recordAudit(ctx, a, part, batch, nil); err != nil {
			return res, err
		}
		n, err := s.deleteLetters(ctx, batch)
		res.Purged += n
		res.Sequences = append(res.Sequences, batch...)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// deleteLetters removes seqs from REMEDIATION_DLQ. A letter already gone (purged or replayed
// by someone else, or expired) is not an error. It returns how many it deleted.
func (s *Store) deleteLetters(ctx context.Context, seqs []uint64) (int, error) {
	// Finish deleting what was decided even when interrupted: the audit record says so.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	n := 0
	var failed []uint64
	var last error
	for _, seq := range seqs {
		err := s.b.DeleteMessage(ctx, broker.StreamDLQ, seq)
		switch {
		case err == nil:
			n++
		case errors.Is(err, broker.ErrMessageNotFound):
		default:
			failed, last = append(failed, seq), err
		}
	}
	if len(failed) > 0 {
		return n, fmt.Errorf("could not delete %s from %s (sequences %s): %w — delete them with `remediator dlq purge %s`",
			CountLetters(len(failed)), broker.StreamDLQ, JoinSeqs(failed, 20), s.explain(last, broker.StreamDLQ), JoinSeqs(failed, 20))
	}
	return n, nil
}
