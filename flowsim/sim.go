package flowsim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults.
const (
	// DefaultRateLimit is Okta's limit for direct API invocations of one flow, per second.
	DefaultRateLimit = 10.0
	// DefaultMaxRecorded is how many invocations a flow keeps when Config.MaxRecorded is 0.
	DefaultMaxRecorded = 10000
)

// ErrUnknownFlow is returned for an alias the simulator does not have.
var ErrUnknownFlow = errors.New("flowsim: unknown flow")

// Flow is one simulated API Endpoint flow.
type Flow struct {
	// Alias is the path segment in /api/flo/{alias}/invoke. Required, unique.
	Alias string
	// Name is a human name. Default: Alias.
	Name string
	// Token is the expected client token, sent as the x-api-client-token header or the
	// ?clientToken= query. Empty: no client token.
	Token string
	// OAuth secures the flow with OAuth 2.0 instead: a call needs "Authorization: Bearer"
	// with a live token of Config.Org's authorization server carrying scope
	// okta.workflows.invoke.manage, else 401 E0000011. Needs Config.Org; excludes Token.
	OAuth bool
	// RateLimit is the invocations per second the flow admits, as a token bucket with
	// burst ceil(RateLimit). Default DefaultRateLimit (10, Okta's per-flow limit);
	// math.Inf(1) disables it.
	RateLimit float64
	// Faults are injected from the start; see also Simulator.SetFaults.
	Faults Faults
}

// Config configures a Simulator.
type Config struct {
	// Flows are the simulated flows.
	Flows []Flow
	// Seed seeds the fault draws and execution ids. 0: seeded from the clock.
	Seed int64
	// Logger gets one Debug line per invocation. Default: discard.
	Logger *slog.Logger
	// MaxRecorded is how many invocations each flow keeps (the oldest are dropped).
	// Default DefaultMaxRecorded (10000).
	MaxRecorded int
	// Now is the clock (rate buckets, token and assertion expiry, Date headers). Default
	// time.Now; tests inject a fake one.
	Now func() time.Time
	// Org, when set, also serves an Okta org: the org authorization server
	// (/oauth2/v1/token) and some management API endpoints. See [OrgConfig].
	Org *OrgConfig
}

// Invocation is one recorded call to a flow.
type Invocation struct {
	At time.Time `json:"at"`
	// ExecutionID is set when the flow executed, or, for a duplicate, to the execution id
	// of the earlier run.
	ExecutionID    string `json:"executionId,omitempty"`
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// Inputs are the body fields as the flow received them, "idempotencyKey" included (for a
	// GET, the query parameters except clientToken); numbers are json.Number.
	Inputs map[string]any `json:"inputs,omitempty"`
	// Header is the request header with client-token and Authorization values redacted.
	Header http.Header `json:"header,omitempty"`
	// Status is the HTTP status answered; 0 when no answer was sent (a TimeoutRate hang,
	// or the client gave up during Latency).
	Status int `json:"status"`
	// Duplicate: the idempotency key had already executed, so the call was answered 200
	// with the earlier execution id and the flow did not run again.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Stats count a flow's calls since it was created or last Reset.
type Stats struct {
	// Received counts calls routed to the flow.
	Received int `json:"received"`
	// Executed counts flow runs, including runs whose answer was lost.
	Executed int `json:"executed"`
	// Succeeded counts 200 answers, duplicates included.
	Succeeded int `json:"succeeded"`
	// RateLimited counts 429 answers, from the bucket or injected.
	RateLimited int `json:"rateLimited"`
	// Unauthorized counts 401 answers.
	Unauthorized int `json:"unauthorized"`
	// Failed counts other error answers: injected 5xx, a fixed Status, a bad body (400).
	Failed int `json:"failed"`
	// TimedOut counts calls that passed every check but were never answered: TimeoutRate
	// hangs, and clients that gave up (or a Close) during Latency.
	TimedOut int `json:"timedOut"`
	// Duplicates counts calls answered from the idempotency table.
	Duplicates int `json:"duplicates"`
	// MaxExecutionsPerKey is the most runs any one idempotency key caused. It must stay 1
	// (or 0) if the dispatcher is correct.
	MaxExecutionsPerKey int `json:"maxExecutionsPerKey"`
}

// Simulator is an [http.Handler] serving simulated flows and the /_sim/ admin API.
type Simulator struct {
	flows  map[string]*flowState
	order  []string
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
	errSeq atomic.Uint64
	org    *orgState // nil without Config.Org

	done      chan struct{}
	closeOnce sync.Once
}

var _ http.Handler = (*Simulator)(nil)

// New validates cfg, fills its defaults and returns a Simulator.
func New(cfg Config) (*Simulator, error) {
	if cfg.MaxRecorded < 0 {
		return nil, fmt.Errorf("flowsim: MaxRecorded %d must not be negative", cfg.MaxRecorded)
	}
	if cfg.MaxRecorded == 0 {
		cfg.MaxRecorded = DefaultMaxRecorded
	}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Simulator{
		flows: make(map[string]*flowState, len(cfg.Flows)),
		log:   cfg.Logger,
		now:   cfg.Now,
		done:  make(chan struct{}),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Org != nil {
		org, err := newOrgState(cfg.Org)
		if err != nil {
			return nil, err
		}
		s.org = org
	}
	for i, f := range cfg.Flows {
		if f.OAuth && (f.Token != "" || s.org == nil) {
			return nil, fmt.Errorf("flowsim: flow %q: OAuth needs Config.Org and no Token (a flow has one security mode)", f.Alias)
		}
		if err := validAlias(f.Alias); err != nil {
			return nil, fmt.Errorf("flowsim: flow %d: %w", i, err)
		}
		if _, dup := s.flows[f.Alias]; dup {
			return nil, fmt.Errorf("flowsim: flow alias %q appears twice", f.Alias)
		}
		if math.IsNaN(f.RateLimit) || f.RateLimit < 0 {
			return nil, fmt.Errorf("flowsim: flow %q: RateLimit %v must be positive", f.Alias, f.RateLimit)
		}
		if err := f.Faults.Validate(); err != nil {
			return nil, fmt.Errorf("flowsim: flow %q: %w", f.Alias, err)
		}
		if f.Name == "" {
			f.Name = f.Alias
		}
		if f.RateLimit == 0 {
			f.RateLimit = DefaultRateLimit
		}
		s.flows[f.Alias] = newFlowState(f, cfg.Seed, cfg.MaxRecorded)
		s.order = append(s.order, f.Alias)
	}
	s.routes()
	return s, nil
}

func validAlias(a string) error {
	if a == "" {
		return errors.New("alias is empty")
	}
	if strings.ContainsAny(a, "/?#% \t\r\n") {
		return fmt.Errorf("alias %q must be a single URL path segment", a)
	}
	return nil
}

// ServeHTTP serves /api/flo/{alias}/invoke and /_sim/.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// SetFaults replaces the faults of a flow.
func (s *Simulator) SetFaults(alias string, f Faults) error {
	fs, ok := s.flows[alias]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownFlow, alias)
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("flowsim: %w", err)
	}
	fs.mu.Lock()
	fs.faults = f
	fs.mu.Unlock()
	return nil
}

// Faults returns the current faults of a flow (zero for an unknown alias).
func (s *Simulator) Faults(alias string) Faults {
	fs, ok := s.flows[alias]
	if !ok {
		return Faults{}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.faults
}

// Invocations returns copies of a flow's recorded invocations, oldest first (nil for an
// unknown alias).
func (s *Simulator) Invocations(alias string) []Invocation {
	fs, ok := s.flows[alias]
	if !ok {
		return nil
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.invocations(0)
}

// Stats returns a flow's counters (zero for an unknown alias).
func (s *Simulator) Stats(alias string) Stats {
	fs, ok := s.flows[alias]
	if !ok {
		return Stats{}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.stats
}

// Reset forgets a flow's invocations, counters and idempotency table. Its faults and rate
// bucket are kept.
func (s *Simulator) Reset(alias string) {
	fs, ok := s.flows[alias]
	if !ok {
		return
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.ring, fs.next = fs.ring[:0], 0
	fs.stats = Stats{}
	fs.keys = make(map[string]*keyState)
}

// Close releases calls held by Latency or a TimeoutRate hang (their connections are
// dropped without an answer) and makes later such calls drop at once. Call it before
// shutting down the HTTP server that serves the simulator, which would otherwise wait for
// hung calls.
func (s *Simulator) Close() { s.closeOnce.Do(func() { close(s.done) }) }

// flowState is one flow's configuration and mutable state.
type flowState struct {
	alias, name, token string
	oauth              bool
	rateLimit          float64 // +Inf: unlimited
	burst              int

	mu      sync.Mutex
	faults  Faults
	limiter *rate.Limiter
	rng     *rand.Rand
	ring    []Invocation // ring buffer of at most max entries
	next    int          // where the next entry goes once the ring is full
	max     int
	stats   Stats
	keys    map[string]*keyState
}

// keyState is one row of the flow's idempotency table.
type keyState struct {
	executions  int
	done        bool   // an execution finished: later calls are duplicates
	executionID string // of the first finished execution
}

func newFlowState(f Flow, seed int64, maxRecorded int) *flowState {
	h := fnv.New64a()
	_, _ = h.Write([]byte(f.Alias))
	fs := &flowState{
		alias:     f.Alias,
		name:      f.Name,
		token:     f.Token,
		oauth:     f.OAuth,
		rateLimit: f.RateLimit,
		faults:    f.Faults,
		rng:       rand.New(rand.NewPCG(uint64(seed), h.Sum64())),
		max:       maxRecorded,
		keys:      make(map[string]*keyState),
	}
	if math.IsInf(f.RateLimit, 1) {
		fs.limiter = rate.NewLimiter(rate.Inf, 0)
	} else {
		fs.burst = int(math.Ceil(f.RateLimit))
		fs.limiter = rate.NewLimiter(rate.Limit(f.RateLimit), fs.burst)
	}
	return fs
}

// record appends inv to the ring. The caller holds mu.
func (fs *flowState) record(inv Invocation) {
	if len(fs.ring) < fs.max {
		fs.ring = append(fs.ring, inv)
		return
	}
	fs.ring[fs.next] = inv
	fs.next = (fs.next + 1) % fs.max
}

// invocations copies the last n recorded invocations (all if n <= 0), oldest first. The
// caller holds mu.
func (fs *flowState) invocations(n int) []Invocation {
	total := len(fs.ring)
	if n <= 0 || n > total {
		n = total
	}
	out := make([]Invocation, 0, n)
	for i := total - n; i < total; i++ {
		inv := fs.ring[(fs.next+i)%total]
		inv.Inputs = maps.Clone(inv.Inputs)
		inv.Header = inv.Header.Clone()
		out = append(out, inv)
	}
	return out
}
