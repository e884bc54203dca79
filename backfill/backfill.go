package backfill

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/okta"
	"github.com/remediator/remediator/publish"
)

// Keys of the remediation_backfill bucket.
const (
	CursorKey = "cursor"
	LeaseKey  = "lease"
)

// minLease is the shortest lease: long enough that a poll of several pages finishes well
// within it.
const minLease = 30 * time.Second

// Source reads System Log pages. *okta.Client implements it.
type Source interface {
	LogPage(ctx context.Context, pathOrNext string) (events []json.RawMessage, next string, rl okta.RateLimit, err error)
}

// Publisher stores an event in JetStream. *publish.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, data []byte, opts publish.Options) (publish.Result, error)
}

// Store is the remediation_backfill bucket. *broker.KV implements it; a missing key is
// broker.ErrKeyNotFound, a lost compare-and-set broker.ErrKeyExists or
// broker.ErrRevisionMismatch.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	Update(ctx context.Context, key string, value []byte, lastRevision uint64) (uint64, error)
}

var (
	_ Source    = (*okta.Client)(nil)
	_ Publisher = (*publish.Publisher)(nil)
	_ Store     = (*broker.KV)(nil)
)

// Config configures a [Poller]. Every value is explicit (the config package holds the
// defaults); [New] refuses a missing one, naming it.
type Config struct {
	Source    Source
	Publisher Publisher
	Store     Store
	// Filter is the System Log filter, such as eventType eq "user.risk.detect".
	Filter string
	// Interval between polls once caught up. > 0.
	Interval time.Duration
	// Lookback is how far back a first poll (no cursor yet) reads. > 0.
	Lookback time.Duration
	// PageSize is each request's limit, 1–1000.
	PageSize int
	// MaxEventBytes is the largest LogEvent published (limits.maxEventBytes); a larger one is
	// logged as an error and left out, as the ingress does.
	MaxEventBytes int64
	// PublishTimeout bounds the publish of one page.
	PublishTimeout time.Duration
	// Holder names this replica in the lease. Default: host name, process id and a random
	// suffix.
	Holder string
	Logger *slog.Logger
	// MeterProvider gets the poller's metrics (metrics.go). Default: none.
	MeterProvider metric.MeterProvider
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Polled, when set, is called after each poll with the events it published and whether
	// this replica holds the lease (tests wait on it).
	Polled func(published int, leader bool)
}

// Poller is the System Log poller.
type Poller struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	lease   time.Duration

	leaseRev  uint64 // revision of our lease value; 0 when not held
	cursorRev uint64 // revision of the cursor as last read or written; 0 when none
	cursor    Cursor
}

// Cursor is where the next poll starts.
type Cursor struct {
	// Next is Okta's next link of the last page read.
	Next string `json:"next,omitempty"`
	// Published is the published time of the last event read.
	Published time.Time `json:"published,omitzero"`
	// Updated is when the cursor was written, and Holder by whom.
	Updated time.Time `json:"updated"`
	Holder  string    `json:"holder"`
}

type leaseValue struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// New checks cfg and returns a poller.
func New(cfg Config) (*Poller, error) {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf("backfill: "+f, a...)) }
	if cfg.Source == nil || cfg.Publisher == nil || cfg.Store == nil {
		bad("Source, Publisher and Store are required")
	}
	if cfg.Filter == "" {
		bad("Filter is required")
	}
	if cfg.Interval <= 0 || cfg.Lookback <= 0 || cfg.PublishTimeout <= 0 {
		bad("Interval %s, Lookback %s and PublishTimeout %s must be above 0", cfg.Interval, cfg.Lookback, cfg.PublishTimeout)
	}
	if cfg.PageSize < 1 || cfg.PageSize > 1000 {
		bad("PageSize %d must be 1 to 1000", cfg.PageSize)
	}
	if cfg.MaxEventBytes <= 0 {
		bad("MaxEventBytes %d must be above 0", cfg.MaxEventBytes)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("backfill: metrics: %w", err)
	}
	return &Poller{cfg: cfg, log: log.With("component", "backfill"), metrics: m, lease: max(3*cfg.Interval, minLease)}, nil
}

// Run polls until ctx ends, then gives the lease up and returns nil. Failures (Okta, JetStream)
// are logged and retried at the next interval; they never stop it.
func (p *Poller) Run(ctx context.Context) error {
	p.log.InfoContext(ctx, "System Log backfill started", slog.String("filter", p.cfg.Filter),
		slog.Duration("interval", p.cfg.Interval), slog.String("holder", p.cfg.Holder))
	defer p.release()
	for {
		wait := p.cfg.Interval
		published, leader, err := p.pollOnce(ctx)
		var oe *okta.Error
		result := pollOK
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &oe) && oe.RateLimit != nil && errors.Is(err, okta.ErrRateLimited):
			wait = max(wait, oe.RateLimit.Wait(p.cfg.Now()))
			result = pollRateLimited
			p.log.WarnContext(ctx, "System Log rate limit reached; waiting for its reset", slog.Duration("wait", wait))
		case err != nil:
			result = pollFailed
			p.log.ErrorContext(ctx, "System Log backfill poll failed; retrying at the next interval", slog.Any("error", err), slog.Duration("wait", wait))
		case !leader:
			result = pollStandby
		}
		p.metrics.poll(ctx, result, leader)
		if published > 0 {
			p.log.InfoContext(ctx, "System Log backfill published risk events the stream did not have (missed by the event hook, or read before it delivered them)",
				slog.Int("events", published), slog.Time("cursor", p.cursor.Published))
		}
		if p.cfg.Polled != nil {
			p.cfg.Polled(published, leader)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// pollOnce takes or renews the lease and, holding it, reads pages until caught up.
func (p *Poller) pollOnce(ctx context.Context) (published int, leader bool, err error) {
	if leader, err = p.holdLease(ctx); err != nil || !leader {
		return 0, leader, err
	}
	if err := p.loadCursor(ctx); err != nil {
		return 0, true, err
	}
	for {
		path := p.cursor.Next
		if path == "" {
			since := p.cursor.Published
			if since.IsZero() {
				since = p.cfg.Now().Add(-p.cfg.Lookback)
			}
			path = okta.LogsPath(okta.LogQuery{Since: since, Filter: p.cfg.Filter, Limit: p.cfg.PageSize})
		}
		events, next, rl, err := p.cfg.Source.LogPage(ctx, path)
		if err != nil {
			if p.cursor.Next != "" && (errors.Is(err, okta.ErrRequest) || errors.Is(err, okta.ErrNotFound)) {
				// Okta refused its own next link (expired): start again from the last
				// published time; the event at that time is read again, a duplicate.
				p.log.WarnContext(ctx, "Okta refused the stored next link; polling again from the last event's time",
					slog.Time("since", p.cursor.Published), slog.Any("error", err))
				p.cursor.Next = ""
				continue
			}
			return published, true, fmt.Errorf("GET /api/v1/logs: %w", err)
		}
		n, last, err := p.publishPage(ctx, events)
		published += n
		if err != nil {
			return published, true, err // the cursor stays: the page is read again
		}
		c := p.cursor
		if next != "" {
			c.Next = next
		}
		if !last.IsZero() {
			c.Published = last
		}
		if err := p.saveCursor(ctx, c); err != nil {
			return published, true, err
		}
		if rl.Limit > 0 && rl.Remaining*10 <= rl.Limit {
			if w := rl.Wait(p.cfg.Now()); w > 0 {
				// Leave the rest of the window to the org's other clients.
				p.log.InfoContext(ctx, "System Log rate limit nearly used; waiting for its reset",
					slog.Int("remaining", rl.Remaining), slog.Int("limit", rl.Limit), slog.Duration("wait", w))
				select {
				case <-ctx.Done():
					return published, true, nil
				case <-time.After(w):
				}
				if leader, err := p.holdLease(ctx); err != nil || !leader {
					return published, leader, err
				}
			}
		}
		if len(events) < p.cfg.PageSize || next == "" {
			return published, true, nil // caught up
		}
	}
}

// publishPage publishes the page's risk events and returns how many were new and the last
// event's published time. It returns an error unless every one is stored.
func (p *Poller) publishPage(ctx context.Context, events []json.RawMessage) (int, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	var last time.Time
	n := 0
	for _, raw := range events {
		var head struct {
			UUID      string    `json:"uuid"`
			EventType string    `json:"eventType"`
			Published time.Time `json:"published"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			p.log.ErrorContext(ctx, "System Log returned an event that is not a LogEvent; left out", slog.Any("error", err))
			continue
		}
		if !head.Published.IsZero() {
			last = head.Published
		}
		if !event.IsRiskEventType(head.EventType) {
			continue // a broader filter: only user.risk.detect and user.risk.change are remediated
		}
		if int64(len(raw)) > p.cfg.MaxEventBytes {
			p.metrics.event(ctx, outcomeTooLarge)
			p.log.ErrorContext(ctx, "Okta LogEvent larger than limits.maxEventBytes not stored",
				slog.String("uuid", head.UUID), slog.Int("bytes", len(raw)), slog.Int64("limit", p.cfg.MaxEventBytes))
			continue
		}
		res, err := p.cfg.Publisher.Publish(ctx, raw, publish.Options{Subject: event.SubjectITP, MsgID: MsgID(head.UUID, raw)})
		if err != nil {
			return n, last, fmt.Errorf("publish LogEvent %s: %w", head.UUID, err)
		}
		if res.Duplicate {
			p.metrics.event(ctx, outcomeDuplicate)
		} else {
			p.metrics.event(ctx, outcomePublished)
			n++
		}
	}
	return n, last, nil
}

// MsgID is the de-duplication id of a LogEvent, the one the event-hook ingress gives it: its
// uuid, or for a LogEvent without one "sha256:" and the hash of its bytes.
func MsgID(uuid string, raw []byte) string {
	if uuid != "" {
		return uuid
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// holdLease takes the lease when it is free or expired, renews it when held, and reports
// whether this replica holds it.
func (p *Poller) holdLease(ctx context.Context) (bool, error) {
	now := p.cfg.Now()
	val, _ := json.Marshal(leaseValue{Holder: p.cfg.Holder, Expires: now.Add(p.lease)})
	data, rev, err := p.cfg.Store.Get(ctx, LeaseKey)
	switch {
	case errors.Is(err, broker.ErrKeyNotFound):
		rev, err = p.cfg.Store.Create(ctx, LeaseKey, val)
		return p.leaseResult(ctx, rev, err)
	case err != nil:
		p.leaseRev = 0
		return false, fmt.Errorf("read the backfill lease: %w", err)
	}
	var cur leaseValue
	_ = json.Unmarshal(data, &cur) // an unreadable lease is taken over like an expired one
	if cur.Holder != p.cfg.Holder && now.Before(cur.Expires) {
		if p.leaseRev != 0 {
			p.log.WarnContext(ctx, "another replica holds the backfill lease now", slog.String("holder", cur.Holder))
		}
		p.leaseRev = 0
		return false, nil
	}
	rev, err = p.cfg.Store.Update(ctx, LeaseKey, val, rev)
	return p.leaseResult(ctx, rev, err)
}

func (p *Poller) leaseResult(ctx context.Context, rev uint64, err error) (bool, error) {
	switch {
	case errors.Is(err, broker.ErrKeyExists), errors.Is(err, broker.ErrRevisionMismatch):
		p.leaseRev = 0
		return false, nil // another replica was quicker
	case err != nil:
		p.leaseRev = 0
		return false, fmt.Errorf("write the backfill lease: %w", err)
	}
	if p.leaseRev == 0 {
		p.log.InfoContext(ctx, "this replica polls the System Log (it holds the backfill lease)", slog.String("holder", p.cfg.Holder))
		p.cursorRev = 0 // another replica may have moved the cursor meanwhile
	}
	p.leaseRev = rev
	return true, nil
}

// release hands the lease back on shutdown, so another replica takes over at once. It reads
// the lease rather than trusting leaseRev, and reads it again when it changed meanwhile: a
// shutdown that cancels a renewal mid-write leaves leaseRev unknown, while the renewal may
// still be stored after the first read.
func (p *Poller) release() {
	p.leaseRev = 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	for range releaseAttempts {
		var data []byte
		var rev uint64
		if data, rev, err = p.cfg.Store.Get(ctx, LeaseKey); err != nil {
			break
		}
		var cur leaseValue
		if json.Unmarshal(data, &cur) != nil || cur.Holder != p.cfg.Holder || !p.cfg.Now().Before(cur.Expires) {
			return // not ours, or already free
		}
		val, _ := json.Marshal(leaseValue{Holder: p.cfg.Holder, Expires: p.cfg.Now()})
		if _, err = p.cfg.Store.Update(ctx, LeaseKey, val, rev); !errors.Is(err, broker.ErrRevisionMismatch) {
			break
		}
	}
	if err != nil && !errors.Is(err, broker.ErrKeyNotFound) {
		p.log.Warn("could not hand the backfill lease back; another replica takes over when it expires", slog.Any("error", err))
	}
}

// releaseAttempts bounds release's read-and-update rounds.
const releaseAttempts = 3

func (p *Poller) loadCursor(ctx context.Context) error {
	data, rev, err := p.cfg.Store.Get(ctx, CursorKey)
	switch {
	case errors.Is(err, broker.ErrKeyNotFound):
		p.cursor, p.cursorRev = Cursor{}, 0
		return nil
	case err != nil:
		return fmt.Errorf("read the backfill cursor: %w", err)
	}
	var c Cursor
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("the backfill cursor in %s is unreadable (delete the key %q to start again from the lookback): %w", broker.KVBackfill, CursorKey, err)
	}
	p.cursor, p.cursorRev = c, rev
	return nil
}

// saveCursor writes c if nobody else wrote the cursor since it was read.
func (p *Poller) saveCursor(ctx context.Context, c Cursor) error {
	c.Updated, c.Holder = p.cfg.Now().UTC(), p.cfg.Holder
	val, err := json.Marshal(c)
	if err != nil {
		return err
	}
	var rev uint64
	if p.cursorRev == 0 {
		rev, err = p.cfg.Store.Create(ctx, CursorKey, val)
	} else {
		rev, err = p.cfg.Store.Update(ctx, CursorKey, val, p.cursorRev)
	}
	if errors.Is(err, broker.ErrKeyExists) || errors.Is(err, broker.ErrRevisionMismatch) {
		p.leaseRev = 0 // another replica polls: stop, and take the lease again only if it lapses
		return fmt.Errorf("the backfill cursor was moved by another replica; this one stops polling until the lease is free: %w", err)
	}
	if err != nil {
		return fmt.Errorf("write the backfill cursor: %w", err)
	}
	p.cursor, p.cursorRev = c, rev
	return nil
}
