package ingress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/publish"
)

// publishConcurrency bounds the publishes of one delivery in flight at once, so a large batch
// is stored within Okta's 3s without opening an unbounded number of requests.
const publishConcurrency = 16

// maxLoggedTypes bounds the set of skipped event types remembered for logging once each.
const maxLoggedTypes = 256

// Outcomes of an Okta LogEvent, the "outcome" attribute of remediator.ingress.okta.events.
const (
	outcomePublished = "published"
	outcomeDuplicate = "duplicate" // stored before (Okta redelivered it) or twice in one batch
	outcomeSkipped   = "skipped"   // not a risk event type
	outcomeTooLarge  = "too_large" // larger than MaxEventBytes
)

// oktaHook serves /hooks/okta: GET answers the verification challenge, POST takes a delivery.
func (h *Handler) oktaHook(req *request) response {
	if req.r.Method == http.MethodGet {
		return oktaVerify(req.r)
	}
	auth := func(r *http.Request) (string, bool) { return match(h.okta, r.Header.Get("Authorization")) }
	if resp, ok := h.door(req, auth, h.cfg.MaxHookBatchBytes); !ok {
		return resp
	}
	events, err := h.deps.Split(req.body)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "not an Okta event hook delivery: "+err.Error())
	}
	var batch []pending
	seen := map[string]bool{}
	for _, le := range events {
		if !le.IsRisk() { // only user.risk.detect and user.risk.change are remediated
			h.skipped(req.ctx, le.EventType)
			continue
		}
		if int64(len(le.Raw)) > h.cfg.MaxEventBytes {
			// Okta does not retry a 4xx, so refusing the batch would lose its other events.
			// This one cannot be stored whole (limits.maxEventBytes); say so loudly.
			h.metrics.oktaEvent(req.ctx, le.EventType, outcomeTooLarge)
			h.log.ErrorContext(req.ctx, "Okta LogEvent larger than limits.maxEventBytes not stored; recover it from the System Log",
				slog.String("uuid", le.UUID), slog.String("event_type", le.EventType), slog.Int("bytes", len(le.Raw)), slog.Int64("limit", h.cfg.MaxEventBytes))
			continue
		}
		id := le.UUID
		if id == "" {
			// Without a uuid, the content still makes Okta's redelivery a duplicate.
			sum := sha256.Sum256(le.Raw)
			id = "sha256:" + hex.EncodeToString(sum[:])
		}
		if seen[id] {
			h.metrics.oktaEvent(req.ctx, le.EventType, outcomeDuplicate)
			continue
		}
		seen[id] = true
		batch = append(batch, pending{msgID: id, eventType: le.EventType, data: le.Raw})
	}
	if err := h.publishBatch(req.ctx, batch, req.principal); err != nil {
		return h.unavailable(req.ctx, err)
	}
	return response{status: http.StatusNoContent}
}

// oktaVerify answers Okta's one-time GET with the challenge it sent.
func oktaVerify(r *http.Request) response {
	challenge := r.Header.Get(HeaderOktaChallenge)
	switch {
	case challenge == "":
		return errorResponse(http.StatusBadRequest, "missing "+HeaderOktaChallenge+" header")
	case len(challenge) > maxChallengeBytes:
		return errorResponse(http.StatusBadRequest, HeaderOktaChallenge+" is too long")
	}
	return response{status: http.StatusOK, body: map[string]string{"verification": challenge}}
}

// skipped counts an event type the hook does not forward, and logs each type once.
func (h *Handler) skipped(ctx context.Context, eventType string) {
	h.metrics.oktaEvent(ctx, eventType, outcomeSkipped)
	if h.skipLog.add(eventType) {
		h.log.InfoContext(ctx, "skipping Okta events of a type remediator does not handle (logged once per type); remove it from the event hook's subscription",
			slog.String("event_type", eventType))
	}
}

// pending is one LogEvent to publish.
type pending struct {
	msgID, eventType string
	data             []byte
}

// publishBatch stores every event of a delivery and returns nil only once JetStream has
// acknowledged them all. The first failure cancels what is still in flight.
func (h *Handler) publishBatch(ctx context.Context, batch []pending, principal string) error {
	if len(batch) == 0 {
		return nil
	}
	if h.deps.Connected != nil && !h.deps.Connected() {
		return errUnavailable
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		slots    = make(chan struct{}, publishConcurrency)
	)
	for _, p := range batch {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			res, err := h.deps.Publisher.Publish(ctx, p.data, publish.Options{Subject: event.SubjectITP, MsgID: p.msgID, Header: principalHeader(principal)})
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("LogEvent %s: %w", p.msgID, err)
					cancel()
				}
				mu.Unlock()
				return
			}
			outcome := outcomePublished
			if res.Duplicate {
				outcome = outcomeDuplicate
			}
			h.metrics.oktaEvent(ctx, p.eventType, outcome)
		})
	}
	wg.Wait()
	return firstErr
}

// onceSet remembers up to max strings; add reports whether s is new. Past max, nothing new is
// remembered and add reports false, so a sender cycling through names cannot grow it.
type onceSet struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

func newOnceSet(max int) *onceSet { return &onceSet{max: max, seen: map[string]bool{}} }

func (s *onceSet) add(v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen[v] || len(s.seen) >= s.max {
		return false
	}
	s.seen[v] = true
	return true
}

func (s *onceSet) has(v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[v]
}
