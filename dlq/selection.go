package dlq

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/remediator/remediator/status"
)

// EventSubjectPrefix is where events are published; only they can be replayed.
const EventSubjectPrefix = "remediation.events."

// Selection says which dead letters a replay or purge acts on: explicit sequences, or a filter.
type Selection struct {
	// Sequences, when not empty, are the letters; one that is not there is an error, so that
	// a typo changes nothing.
	Sequences []uint64
	// Filter selects the letters when Sequences is empty.
	Filter Filter
	// Describe says what the operator asked for, for the audit record and messages.
	Describe string
}

// Ref is what a replay or purge keeps of a selected dead letter: not its payload, so that a
// large selection does not hold every event in memory.
type Ref struct {
	Sequence uint64
	Time     time.Time
	Reason   status.Reason
	EventID  string
	Flow     string
	Subject  string // the original event's subject
}

func refOf(l Letter) Ref {
	r := l.Record
	return Ref{Sequence: l.Sequence, Time: l.Time, Reason: r.Reason, EventID: r.EventID, Flow: r.Flow, Subject: r.Subject}
}

// each calls fn for each selected letter, oldest first (explicit sequences in the order given).
func (s *Store) each(ctx context.Context, sel Selection, fn func(Letter) error) error {
	if len(sel.Sequences) > 0 {
		for _, seq := range sel.Sequences {
			l, err := s.Get(ctx, seq)
			if err != nil {
				return err
			}
			if err := fn(l); err != nil {
				return err
			}
		}
		return nil
	}
	var ferr error
	err := s.Scan(ctx, sel.Filter, func(l Letter) bool {
		ferr = fn(l)
		return ferr == nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// Select reads the selected dead letters, oldest first.
func (s *Store) Select(ctx context.Context, sel Selection) ([]Ref, error) {
	var out []Ref
	err := s.each(ctx, sel, func(l Letter) error {
		out = append(out, refOf(l))
		return nil
	})
	return out, err
}

// notReplayable says why l cannot be replayed whatever its event; "" when it may be.
func notReplayable(l Letter) string {
	r := l.Record
	switch {
	case l.DecodeErr != nil:
		return "the dead-letter record is unreadable"
	case !strings.HasPrefix(r.Subject, EventSubjectPrefix):
		return fmt.Sprintf("its original subject %q is not an event subject (%s*): only events can be replayed", r.Subject, EventSubjectPrefix)
	case len(r.Payload) == 0 && r.EventSequence == 0:
		return "it holds no payload and no reference to its event"
	}
	return ""
}

// eventKey is equal for dead letters of the same event: same subject and bytes.
func eventKey(ev Event) [sha256.Size]byte {
	var k [sha256.Size]byte
	h := sha256.New()
	h.Write([]byte(ev.Subject))
	h.Write([]byte{0})
	h.Write(ev.Payload)
	h.Sum(k[:0])
	return k
}
