package flowsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// Request and response names shared with package flow (which flowsim does not import).
const (
	headerClientToken    = "X-Api-Client-Token"
	queryClientToken     = "clientToken"
	headerIdempotencyKey = "Idempotency-Key"
	fieldIdempotencyKey  = "idempotencyKey"
	headerExecutionID    = "X-Execution-Id"
	maxBody              = 1 << 20
)

// verdict is what the checks before the body decided for one call.
type verdict struct {
	status     int    // non-zero: answer this without executing
	outcome    string // for the log line
	retryAfter bool   // add Retry-After: 1
	hang       bool   // TimeoutRate: execute, then never answer
	hangFor    time.Duration
	delay      time.Duration // Latency + jitter
	limit      *rateHeaders  // nil before the bucket is consulted or when unlimited
}

type rateHeaders struct {
	limit, remaining int
	reset            int64 // epoch seconds
}

func (s *Simulator) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/flo/{alias}/invoke", s.handleInvoke)
	mux.HandleFunc("/_sim/flows", s.methods(map[string]http.HandlerFunc{http.MethodGet: s.handleListFlows}))
	mux.HandleFunc("/_sim/flows/{alias}/invocations", s.methods(map[string]http.HandlerFunc{
		http.MethodGet: s.handleInvocations, http.MethodDelete: s.handleReset}))
	mux.HandleFunc("/_sim/flows/{alias}/faults", s.methods(map[string]http.HandlerFunc{
		http.MethodGet: s.handleGetFaults, http.MethodPut: s.handlePutFaults}))
	if s.org != nil {
		s.orgRoutes(mux)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.URL.Path, nil)
	})
	s.mux = mux
}

func (s *Simulator) handleInvoke(w http.ResponseWriter, r *http.Request) {
	alias := r.PathValue("alias")
	fs, ok := s.flows[alias]
	if !ok {
		s.writeOktaError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+alias+" (Flow)", nil)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		s.writeOktaError(w, http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method", nil)
		return
	}
	inv := Invocation{At: s.now(), Header: redactHeader(r.Header)}
	var authorized bool
	switch {
	case fs.oauth:
		authorized = s.flowAuthorized(r, fs.alias, inv.At)
	case fs.token != "":
		authorized = tokenMatches(r, fs.token)
	default:
		authorized = true
	}
	v := fs.admit(inv.At, authorized)

	if v.status != 0 { // counted by admit
		inv.Status = v.status
		fs.finish(s, r.Context(), inv, v.outcome, nil)
		if !s.wait(r.Context(), v.delay) {
			abort()
		}
		s.writeRejection(w, v)
		return
	}

	inputs, key, err := readInputs(w, r)
	inv.Inputs, inv.IdempotencyKey = inputs, key
	if err != nil {
		inv.Status = http.StatusBadRequest
		fs.finish(s, r.Context(), inv, "bad_request", func(st *Stats) { st.Failed++ })
		if !s.wait(r.Context(), v.delay) {
			abort()
		}
		s.setRateHeaders(w, v.limit)
		s.writeOktaError(w, http.StatusBadRequest, "E0000001", "Api validation failed: body", []string{err.Error()})
		return
	}

	ks, execID, dup := fs.execute(key)
	inv.ExecutionID, inv.Duplicate = execID, dup
	answered := s.wait(r.Context(), v.delay)
	if !dup {
		// The flow finished whether or not anyone is still waiting for the answer.
		fs.complete(ks, execID)
	}
	if !answered || v.hang {
		fs.finish(s, r.Context(), inv, "no_answer", func(st *Stats) { st.TimedOut++ })
		if answered {
			s.wait(r.Context(), v.hangFor) // until the client gives up, Hang elapses or Close
		}
		abort() // the answer is lost
	}
	inv.Status = http.StatusOK
	fs.finish(s, r.Context(), inv, "ok", func(st *Stats) {
		st.Succeeded++
		if dup {
			st.Duplicates++
		}
	})
	s.setRateHeaders(w, v.limit)
	w.Header().Set(headerExecutionID, execID)
	s.writeJSON(w, http.StatusOK, map[string]string{"executionId": execID, "status": "ok"})
}

// abort drops the connection without an answer.
func abort() { panic(http.ErrAbortHandler) }

// admit runs the auth, rate-limit and fault checks and draws this call's random choices.
func (fs *flowState) admit(now time.Time, authorized bool) verdict {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.stats.Received++
	f := fs.faults
	v := verdict{delay: f.Latency, hangFor: f.hang()}
	if f.LatencyJitter > 0 {
		v.delay += time.Duration(fs.rng.Int64N(int64(f.LatencyJitter)))
	}
	if !authorized {
		fs.stats.Unauthorized++
		v.status, v.outcome = http.StatusUnauthorized, "unauthorized"
		return v
	}
	allowed := fs.limiter.AllowN(now, 1)
	v.limit = fs.rateHeaders(now)
	switch {
	case !allowed:
		fs.stats.RateLimited++
		v.status, v.outcome = http.StatusTooManyRequests, "rate_limited"
	case f.Status != 0:
		fs.stats.Failed++
		v.status, v.outcome = f.Status, "fault_status"
	case f.RateLimitRate > 0 && fs.rng.Float64() < f.RateLimitRate:
		fs.stats.RateLimited++
		v.status, v.outcome, v.retryAfter = http.StatusTooManyRequests, "fault_rate_limited", true
	case f.ErrorRate > 0 && fs.rng.Float64() < f.ErrorRate:
		fs.stats.Failed++
		v.status, v.outcome = []int{500, 502, 503}[fs.rng.IntN(3)], "fault_error"
	case f.TimeoutRate > 0 && fs.rng.Float64() < f.TimeoutRate:
		v.hang = true
	}
	return v
}

// rateHeaders describes the bucket after this call. The caller holds mu.
func (fs *flowState) rateHeaders(now time.Time) *rateHeaders {
	if fs.limiter.Limit() == rate.Inf {
		return nil
	}
	tokens := fs.limiter.TokensAt(now)
	next := now
	if tokens < 1 {
		next = now.Add(time.Duration((1 - tokens) / fs.rateLimit * float64(time.Second)))
	}
	reset := next.Unix()
	if next.Nanosecond() > 0 {
		reset++
	}
	return &rateHeaders{limit: fs.burst, remaining: int(math.Max(0, math.Floor(tokens))), reset: reset}
}

// execute consults the idempotency table and runs the flow unless the key already ran.
func (fs *flowState) execute(key string) (ks *keyState, execID string, dup bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if key != "" {
		ks = fs.keys[key]
		if ks != nil && ks.done {
			return ks, ks.executionID, true
		}
		if ks == nil {
			ks = &keyState{}
			fs.keys[key] = ks
		}
		ks.executions++
		fs.stats.MaxExecutionsPerKey = max(fs.stats.MaxExecutionsPerKey, ks.executions)
	}
	fs.stats.Executed++
	return ks, fmt.Sprintf("%016x%016x", fs.rng.Uint64(), fs.rng.Uint64()), false
}

// complete writes the idempotency row once an execution finishes. The first finished
// execution's id is the one duplicates get.
func (fs *flowState) complete(ks *keyState, execID string) {
	if ks == nil {
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if !ks.done {
		ks.done, ks.executionID = true, execID
	}
}

// finish records a call, updates counters and logs it.
func (fs *flowState) finish(s *Simulator, ctx context.Context, inv Invocation, outcome string, count func(*Stats)) {
	fs.mu.Lock()
	if count != nil {
		count(&fs.stats)
	}
	fs.record(inv)
	fs.mu.Unlock()
	s.log.LogAttrs(ctx, slog.LevelDebug, "flowsim invocation",
		slog.String("flow", fs.alias),
		slog.String("outcome", outcome),
		slog.Int("status", inv.Status),
		slog.String("execution_id", inv.ExecutionID),
		slog.String("idempotency_key", inv.IdempotencyKey),
		slog.Bool("duplicate", inv.Duplicate),
	)
}

// wait sleeps d unless ctx ends or the simulator closes first; it reports whether the
// caller should still answer.
func (s *Simulator) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

func (s *Simulator) writeRejection(w http.ResponseWriter, v verdict) {
	s.setRateHeaders(w, v.limit)
	switch v.status {
	case http.StatusUnauthorized:
		s.writeOktaError(w, v.status, "E0000011", "Invalid token provided", nil)
	case http.StatusTooManyRequests:
		if v.retryAfter {
			w.Header().Set("Retry-After", "1")
		}
		s.writeOktaError(w, v.status, "E0000047", "API call exceeded rate limit due to too many requests.", nil)
	default:
		code, summary := "E0000001", http.StatusText(v.status)
		switch {
		case v.status == http.StatusForbidden:
			code = "E0000006"
		case v.status == http.StatusNotFound:
			code = "E0000007"
		case v.status >= 500:
			code = "E0000009"
		}
		if summary == "" {
			summary = "Error"
		}
		s.writeOktaError(w, v.status, code, summary, nil)
	}
}

func (s *Simulator) setRateHeaders(w http.ResponseWriter, rh *rateHeaders) {
	if rh == nil {
		return
	}
	h := w.Header()
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(rh.limit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(rh.remaining))
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(rh.reset, 10))
}

// oktaError is Okta's error object.
type oktaError struct {
	ErrorCode    string       `json:"errorCode"`
	ErrorSummary string       `json:"errorSummary"`
	ErrorLink    string       `json:"errorLink"`
	ErrorID      string       `json:"errorId"`
	ErrorCauses  []oktaCauses `json:"errorCauses"`
}

type oktaCauses struct {
	ErrorSummary string `json:"errorSummary"`
}

func (s *Simulator) writeOktaError(w http.ResponseWriter, status int, code, summary string, causes []string) {
	e := oktaError{
		ErrorCode:    code,
		ErrorSummary: summary,
		ErrorLink:    code,
		ErrorID:      fmt.Sprintf("oaesim%016d", s.errSeq.Add(1)),
		ErrorCauses:  []oktaCauses{},
	}
	for _, c := range causes {
		e.ErrorCauses = append(e.ErrorCauses, oktaCauses{ErrorSummary: c})
	}
	s.writeJSON(w, status, e)
}

// writeJSON answers with v. The Date header comes from the simulator's clock, so rate-limit
// resets and Date agree.
func (s *Simulator) writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Date", s.now().UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// tokenMatches checks the client token in the header, then the query, in constant time.
func tokenMatches(r *http.Request, want string) bool {
	w := sha256.Sum256([]byte(want))
	for _, got := range []string{r.Header.Get(headerClientToken), r.URL.Query().Get(queryClientToken)} {
		if got == "" {
			continue
		}
		g := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(g[:], w[:]) == 1 {
			return true
		}
	}
	return false
}

// redactHeader copies h with credential values replaced.
func redactHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, name := range []string{headerClientToken, "Authorization", "Proxy-Authorization", "Cookie"} {
		if _, ok := out[name]; ok {
			out[name] = []string{"REDACTED"}
		}
	}
	return out
}

// readInputs decodes the call's inputs and idempotency key: the JSON body for POST, the
// query string for GET.
func readInputs(w http.ResponseWriter, r *http.Request) (map[string]any, string, error) {
	var inputs map[string]any
	var bodyKey string
	if r.Method == http.MethodGet {
		inputs = make(map[string]any)
		for k, vs := range r.URL.Query() {
			if k != queryClientToken && len(vs) > 0 {
				inputs[k] = vs[0]
			}
		}
		bodyKey, _ = inputs[fieldIdempotencyKey].(string)
	} else {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			return nil, "", fmt.Errorf("body could not be read: %v", err)
		}
		inputs, bodyKey, err = decodeBody(data)
		if err != nil {
			return nil, "", err
		}
	}
	key := bodyKey
	if hk := r.Header.Get(headerIdempotencyKey); hk != "" {
		if key != "" && key != hk {
			return inputs, key, errors.New("the Idempotency-Key header and the idempotencyKey field differ")
		}
		key = hk
	}
	return inputs, key, nil
}

// decodeBody parses an invoke body: empty, or a JSON object whose values are scalars.
func decodeBody(data []byte) (map[string]any, string, error) {
	inputs := make(map[string]any)
	if len(bytes.TrimSpace(data)) == 0 {
		return inputs, "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, "", errors.New("body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", errors.New("body has data after the JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, "", errors.New("body must be a JSON object")
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		switch obj[k].(type) {
		case []any:
			return nil, "", fmt.Errorf("input %q is a list; a Workflows input must be text, number, true/false or date & time", k)
		case map[string]any:
			return nil, "", fmt.Errorf("input %q is an object; a Workflows input must be text, number, true/false or date & time", k)
		}
	}
	var key string
	if raw, ok := obj[fieldIdempotencyKey]; ok {
		if key, ok = raw.(string); !ok {
			return nil, "", errors.New("idempotencyKey must be a string")
		}
	}
	return obj, key, nil
}
