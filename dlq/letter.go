package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/status"
)

// Streams is what a Store needs of a broker connection; *broker.Broker implements it.
type Streams interface {
	GetMessage(ctx context.Context, stream string, seq uint64) (*broker.StoredMessage, error)
	DeleteMessage(ctx context.Context, stream string, seq uint64) error
	Scan(ctx context.Context, stream, subjectFilter string, startSeq uint64, startTime time.Time, fn func(*broker.StoredMessage) bool) error
	StreamInfo(ctx context.Context, stream string, subjectCounts bool) (*broker.StreamInfo, error)
	Publish(ctx context.Context, subject string, data []byte, opts broker.PublishOptions) (broker.PubAck, error)
}

var _ Streams = (*broker.Broker)(nil)

// Options configure a Store.
type Options struct {
	// Server names the NATS server in error messages (passwords redacted). Default: none.
	Server string
	// Publisher republishes replayed events. Default: publish.New over the Store's streams
	// with the global tracer provider.
	Publisher *publish.Publisher
	// Host is recorded in audit records. Default: os.Hostname.
	Host string
	// Keys are the record keys: a dead letter is replayed only if its MAC (header
	// Remediator-Mac) verifies with them, and audit records are signed with the primary.
	// Required to replay ([ErrNoRecordKeys] otherwise); listing and purging work without.
	Keys *seal.Keyring
}

// Store reads and operates REMEDIATION_DLQ. It is safe for concurrent use.
type Store struct {
	keys   *seal.Keyring
	b      Streams
	pub    *publish.Publisher
	server string
	host   string
}

// New returns a Store over b.
func New(b Streams, opts Options) *Store {
	s := &Store{b: b, pub: opts.Publisher, server: opts.Server, host: opts.Host, keys: opts.Keys}
	if s.pub == nil {
		s.pub = publish.New(b, nil)
	}
	if s.host == "" {
		s.host = hostname()
	}
	return s
}

// ErrLetterNotFound means REMEDIATION_DLQ holds no dead letter with the sequence asked for:
// it was replayed, purged or expired, or the sequence is wrong.
var ErrLetterNotFound = errors.New("dead letter not found")

// ErrEventGone means a dead letter holds only a reference to its event and the event is no
// longer in REMEDIATION_EVENTS (removed by the stream's retention, streams.maxAge, or deleted).
var ErrEventGone = errors.New("event gone from " + broker.StreamEvents)

// ErrNoRecordKeys means a replay was asked of a Store without record keys: it cannot tell a
// dead letter remediator wrote from a forged one.
var ErrNoRecordKeys = errors.New("no record keys to verify dead letters with (security.recordKeys)")

// Verify checks the letter's MAC with keys: nil when remediator wrote it, an error matching
// seal.ErrUnverified (saying why) when not.
func (l Letter) Verify(keys *seal.Keyring) error {
	if keys == nil {
		return ErrNoRecordKeys
	}
	_, err := keys.VerifyHeader(l.Subject, l.Data, l.Header)
	return err
}

// MissingStreamError reports that one of remediator's streams does not exist on the server:
// the server is not the one remediator runs against, or remediator never started there.
type MissingStreamError struct {
	Stream string
	Server string // may be empty
	Err    error
}

func (e *MissingStreamError) Error() string {
	hint := "it creates its streams at start"
	if e.Stream == broker.StreamAudit {
		hint = "it creates its streams at start; a remediator started before the audit stream existed creates it when restarted"
	}
	on := ""
	if e.Server != "" {
		on = " on " + e.Server
	}
	return fmt.Sprintf("stream %s does not exist%s — is remediator running against this NATS? %s", e.Stream, on, hint)
}

func (e *MissingStreamError) Unwrap() error { return e.Err }

// explain turns a missing stream into a [MissingStreamError].
func (s *Store) explain(err error, stream string) error {
	if !errors.Is(err, broker.ErrStreamNotFound) {
		return err
	}
	return &MissingStreamError{Stream: stream, Server: s.server, Err: err}
}

// Letter is one message of REMEDIATION_DLQ, decoded.
type Letter struct {
	Sequence uint64
	Time     time.Time           // when REMEDIATION_DLQ stored it
	Subject  string              // remediation.dlq.<reason>
	Header   map[string][]string // headers of the dead-letter message itself
	Data     []byte              // the message as stored, for its MAC
	Record   status.DeadLetter
	// DecodeErr is set when the message is not a readable dead-letter record; Record.Reason
	// is then taken from the subject and Record.Error says what is wrong.
	DecodeErr error
}

// Decode reads a stored REMEDIATION_DLQ message. It never fails: an unreadable record is a
// Letter with DecodeErr set, so that it can still be listed and purged.
func Decode(m *broker.StoredMessage) Letter {
	l := Letter{Sequence: m.Sequence, Time: m.Time, Subject: m.Subject, Header: m.Header, Data: m.Data}
	if err := json.Unmarshal(m.Data, &l.Record); err != nil {
		l.DecodeErr = err
		l.Record = status.DeadLetter{Error: fmt.Sprintf("unreadable dead-letter record: %v", err)}
	}
	if l.Record.Reason == "" {
		l.Record.Reason = status.Reason(strings.TrimPrefix(m.Subject, status.DLQSubjectPrefix))
	}
	return l
}

// ByReference reports whether the letter holds no copy of its event, only its sequence in
// REMEDIATION_EVENTS.
func (l Letter) ByReference() bool {
	return l.DecodeErr == nil && len(l.Record.Payload) == 0 && l.Record.EventSequence != 0
}

// Entry is the summary of one dead letter: a line of `dlq list`, JSON for scripts.
type Entry struct {
	Sequence      uint64        `json:"sequence"`
	Time          time.Time     `json:"time"`
	Reason        status.Reason `json:"reason"`
	EventID       string        `json:"eventId,omitempty"`
	EventKind     string        `json:"eventKind,omitempty"`
	Flow          string        `json:"flow,omitempty"`
	Error         string        `json:"error"`
	Attempts      int           `json:"attempts"`
	Subject       string        `json:"subject"`
	EventSequence uint64        `json:"eventSequence,omitempty"`
	FirstSeen     time.Time     `json:"firstSeen,omitzero"`
	LastSeen      time.Time     `json:"lastSeen,omitzero"`
	TraceID       string        `json:"traceId,omitempty"`
}

// Entry summarises l.
func (l Letter) Entry() Entry {
	r := l.Record
	return Entry{
		Sequence: l.Sequence, Time: l.Time, Reason: r.Reason, EventID: r.EventID, EventKind: r.EventKind,
		Flow: r.Flow, Error: r.Error, Attempts: r.Attempts, Subject: r.Subject, EventSequence: r.EventSequence,
		FirstSeen: r.FirstSeen, LastSeen: r.LastSeen, TraceID: r.TraceID,
	}
}

// Filter selects dead letters. Zero fields match everything; set fields combine with AND.
type Filter struct {
	Reason status.Reason
	Flow   string
	Since  time.Time // stored at or after
	Before time.Time // stored before
}

func (f Filter) subject() string {
	if f.Reason != "" {
		return f.Reason.Subject()
	}
	return status.DLQSubjectPrefix + ">"
}

func (f Filter) match(l Letter) bool {
	return (f.Flow == "" || l.Record.Flow == f.Flow) && (f.Before.IsZero() || l.Time.Before(f.Before))
}

// Scan calls fn for each dead letter f selects, oldest first, until fn returns false. It stops
// at the last letter stored when it started, so letters written meanwhile are not included.
func (s *Store) Scan(ctx context.Context, f Filter, fn func(Letter) bool) error {
	err := s.b.Scan(ctx, broker.StreamDLQ, f.subject(), 0, f.Since, func(m *broker.StoredMessage) bool {
		l := Decode(m)
		if !f.Before.IsZero() && !l.Time.Before(f.Before) {
			return false // the stream is in time order: nothing older follows
		}
		if !f.match(l) {
			return true
		}
		return fn(l)
	})
	return s.explain(err, broker.StreamDLQ)
}

// List returns at most limit dead letters f selects (all with limit 0), oldest first, and
// whether more match.
func (s *Store) List(ctx context.Context, f Filter, limit int) (letters []Letter, more bool, err error) {
	err = s.Scan(ctx, f, func(l Letter) bool {
		if limit > 0 && len(letters) == limit {
			more = true
			return false
		}
		letters = append(letters, l)
		return true
	})
	return letters, more, err
}

// Get reads one dead letter. An absent one is an error wrapping [ErrLetterNotFound].
func (s *Store) Get(ctx context.Context, seq uint64) (Letter, error) {
	m, err := s.b.GetMessage(ctx, broker.StreamDLQ, seq)
	if errors.Is(err, broker.ErrMessageNotFound) {
		return Letter{}, fmt.Errorf("no dead letter with sequence %d in %s (it may have been replayed, purged or expired): %w",
			seq, broker.StreamDLQ, ErrLetterNotFound)
	}
	if err != nil {
		return Letter{}, s.explain(err, broker.StreamDLQ)
	}
	return Decode(m), nil
}

// Event is the original event of a dead letter, as it would be replayed.
type Event struct {
	Subject string
	// Header are the original headers: less secrets when copied in the dead letter, as
	// stored when loaded from REMEDIATION_EVENTS.
	Header  map[string][]string
	Payload []byte
	// Sequence is the event's sequence in REMEDIATION_EVENTS when it was loaded from there
	// (the dead letter held only a reference); 0 when the dead letter holds a copy.
	Sequence uint64
}

// OriginalEvent returns the event l is about: the copy it holds, else the event its
// EventSequence refers to, read from REMEDIATION_EVENTS. An event retention removed is an
// error wrapping [ErrEventGone]; a letter with neither copy nor reference is an error too.
func (s *Store) OriginalEvent(ctx context.Context, l Letter) (Event, error) {
	r := l.Record
	switch {
	case l.DecodeErr != nil:
		return Event{}, fmt.Errorf("dead letter %d is unreadable: %w", l.Sequence, l.DecodeErr)
	case len(r.Payload) > 0:
		return Event{Subject: r.Subject, Header: r.Headers, Payload: r.Payload}, nil
	case r.EventSequence == 0:
		return Event{}, fmt.Errorf("dead letter %d holds no payload and no reference to its event", l.Sequence)
	}
	m, err := s.b.GetMessage(ctx, broker.StreamEvents, r.EventSequence)
	if errors.Is(err, broker.ErrMessageNotFound) {
		return Event{}, fmt.Errorf("dead letter %d holds only a reference to event %d in %s, and that event is gone (removed by the stream's retention, streams.maxAge, or deleted): %w",
			l.Sequence, r.EventSequence, broker.StreamEvents, ErrEventGone)
	}
	if err != nil {
		return Event{}, s.explain(err, broker.StreamEvents)
	}
	subject := m.Subject
	if r.Subject != "" {
		subject = r.Subject
	}
	return Event{Subject: subject, Header: m.Header, Payload: m.Data, Sequence: m.Sequence}, nil
}

// RequireStream fails with a [MissingStreamError] when stream does not exist.
func (s *Store) RequireStream(ctx context.Context, stream string) error {
	_, err := s.b.StreamInfo(ctx, stream, false)
	return s.explain(err, stream)
}
