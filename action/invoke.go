package action

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/okta"
)

// The job inputs the acted-on user is read from (see the package documentation).
const (
	InputUserID                  = "userId"
	InputEntityIDInService       = "entityIdInService"
	InputEntitySourceProductName = "entitySourceProductName"
)

// maxHold caps a wait read from Okta's headers, as flow caps a Retry-After.
const maxHold = time.Hour

// Config configures an [Invoker].
type Config struct {
	// Client is the org client. Required.
	Client *okta.Client
	// MaxOutputBytes is how much of Okta's answer body a Result keeps. Default
	// flow.MaxResultBody (4 KiB).
	MaxOutputBytes int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Invoker runs native actions. It is safe for concurrent use.
type Invoker struct {
	c      *okta.Client
	maxOut int
	now    func() time.Time

	// Like a flow that de-duplicates in a Workflows table, the invoker remembers the
	// idempotency keys whose action succeeded (for dedupeTTL, at most dedupeMax of them) and
	// lets concurrent calls with one key share one call: the worker's job record stops a
	// redelivery that comes after the job's terminal record is stored, this stops the
	// deliveries of one event that a replica dispatches at the same time.
	flight singleflight.Group
	mu     sync.Mutex
	done   map[string]doneCall
	order  []string // keys of done, oldest first
}

type doneCall struct {
	res *flow.Result
	at  time.Time
}

const (
	dedupeTTL = 10 * time.Minute
	dedupeMax = 10000
)

// New returns an Invoker.
func New(cfg Config) (*Invoker, error) {
	if cfg.Client == nil {
		return nil, errors.New("action: an Okta org client is required (the okta block)")
	}
	if cfg.MaxOutputBytes <= 0 {
		cfg.MaxOutputBytes = flow.MaxResultBody
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Invoker{c: cfg.Client, maxOut: cfg.MaxOutputBytes, now: cfg.Now, done: map[string]doneCall{}}, nil
}

// UserID finds the acted-on user in a job's inputs, or says which inputs it looked at.
func UserID(in map[string]any) (string, error) {
	str := func(k string) string {
		s, _ := in[k].(string)
		return strings.TrimSpace(s)
	}
	if id := str(InputUserID); id != "" {
		return id, nil
	}
	if id := str(InputEntityIDInService); id != "" {
		if p := str(InputEntitySourceProductName); p == "" || strings.EqualFold(p, "Okta") {
			return id, nil
		}
		return "", fmt.Errorf("%w: the issue's entity is in %q, not Okta: entityIdInService is not an Okta user id", flow.ErrInvalidInput, str(InputEntitySourceProductName))
	}
	return "", fmt.Errorf("%w: no Okta user id: the job has no %s input (the user at risk), nor an Okta %s (an ISPM issue's entity); map one into %s with the flow's inputs",
		flow.ErrInvalidInput, InputUserID, InputEntityIDInService, InputUserID)
}

// Validate checks an action endpoint's name and parameters.
func Validate(ep flow.Endpoint) (okta.Action, error) {
	act, ok := okta.LookupAction(ep.Action)
	if !ok {
		return act, fmt.Errorf("%w: action %q is not one of %s", flow.ErrInvalidEndpoint, ep.Action, strings.Join(okta.ActionNames(), ", "))
	}
	for _, p := range act.Params {
		if strings.TrimSpace(ep.Params[p]) == "" {
			return act, fmt.Errorf("%w: action %s needs params.%s", flow.ErrInvalidEndpoint, act.Name, p)
		}
	}
	if act.Name == okta.ActionSetUserRisk {
		switch strings.ToUpper(ep.Params[okta.ParamRiskLevel]) {
		case "HIGH", "MEDIUM", "LOW":
		default:
			return act, fmt.Errorf("%w: params.riskLevel %q must be HIGH, MEDIUM or LOW", flow.ErrInvalidEndpoint, ep.Params[okta.ParamRiskLevel])
		}
	}
	return act, nil
}

// Invoke runs the endpoint's action on the user named by req.Inputs. It returns Okta's answer
// as a Result and, when the action did not take effect, a *flow.Error classified as for a
// flow. The idempotency key is not sent to Okta (each action is idempotent in effect, and an
// action already in effect succeeds); the invoker itself does not call twice for one key
// (see Invoker), answering a repeated key from the first call's result with a note.
func (inv *Invoker) Invoke(ctx context.Context, ep flow.Endpoint, req flow.Request) (*flow.Result, error) {
	if req.IdempotencyKey == "" {
		return inv.invoke(ctx, ep, req)
	}
	key := ep.Name + "\x00" + ep.Action + "\x00" + req.IdempotencyKey
	if res := inv.succeeded(key); res != nil {
		return res, nil
	}
	v, err, shared := inv.flight.Do(key, func() (any, error) {
		res, err := inv.invoke(ctx, ep, req)
		if err == nil && res != nil {
			inv.remember(key, res)
		}
		return res, err
	})
	res, _ := v.(*flow.Result)
	if shared && res != nil {
		c := *res // each caller gets its own copy
		res = &c
	}
	return res, err
}

// succeeded returns a copy of the result of the key's successful call, noted as a duplicate,
// or nil.
func (inv *Invoker) succeeded(key string) *flow.Result {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	d, ok := inv.done[key]
	if !ok || inv.now().Sub(d.at) > dedupeTTL {
		return nil
	}
	c := *d.res
	c.Note = strings.TrimSpace("duplicate: the action already succeeded for this idempotency key at " +
		d.at.UTC().Format(time.RFC3339) + " and was not sent again. " + d.res.Note)
	c.Hold = 0
	return &c
}

func (inv *Invoker) remember(key string, res *flow.Result) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if _, ok := inv.done[key]; !ok {
		inv.order = append(inv.order, key)
	}
	inv.done[key] = doneCall{res: res, at: inv.now()}
	for len(inv.order) > dedupeMax || (len(inv.order) > 0 && inv.now().Sub(inv.done[inv.order[0]].at) > dedupeTTL) {
		delete(inv.done, inv.order[0])
		inv.order = inv.order[1:]
	}
}

func (inv *Invoker) invoke(ctx context.Context, ep flow.Endpoint, req flow.Request) (*flow.Result, error) {
	name := ep.Name
	act, err := Validate(ep)
	if err != nil {
		return nil, flow.NewError(name, flow.ClassPermanent, 0, err.Error(), err)
	}
	user, err := UserID(req.Inputs)
	if err != nil {
		return nil, flow.NewError(name, flow.ClassPermanent, 0, err.Error(), err)
	}
	timeout := ep.Timeout
	if timeout <= 0 {
		timeout = flow.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	path := strings.NewReplacer("{userId}", url.PathEscape(user), "{groupId}", url.PathEscape(ep.Params[okta.ParamGroupID])).Replace(act.Path)
	var body any
	if act.Name == okta.ActionSetUserRisk {
		body = map[string]string{"riskLevel": strings.ToUpper(ep.Params[okta.ParamRiskLevel])}
	}
	start := inv.now()
	resp, err := inv.c.Send(ctx, act.Method, path, body, inv.maxOut, act.Scope)
	res := inv.result(resp, start)
	if err == nil {
		return res, nil
	}
	var oe *okta.Error
	if !errors.As(err, &oe) { // unreachable: Send returns *okta.Error
		return res, flow.NewError(name, flow.ClassRetryable, 0, err.Error(), err)
	}
	if note, ok := inv.alreadyInEffect(ctx, act, user, oe); ok {
		res.Note = note
		return res, nil
	}
	return res, inv.failure(name, act, oe)
}

// result is Okta's answer as a flow Result, with the hold its rate-limit headers ask for.
func (inv *Invoker) result(resp *okta.Response, start time.Time) *flow.Result {
	if resp == nil {
		return nil
	}
	res := &flow.Result{
		StatusCode: resp.StatusCode, Header: flow.RedactHeader(resp.Header, nil),
		Body: resp.Body, BodyTruncated: resp.Truncated, Duration: inv.now().Sub(start),
		ExecutionID: resp.Header.Get("X-Okta-Request-Id"),
	}
	if rl, ok := resp.RateLimit(); ok && rl.Remaining <= 0 {
		res.Hold = min(max(rl.Wait(inv.now()), time.Second), maxHold)
	}
	return res
}

// alreadyInEffect reports whether a refused action's effect already holds, reading the user's
// status for the lifecycle actions Okta refuses in the target status.
func (inv *Invoker) alreadyInEffect(ctx context.Context, act okta.Action, user string, oe *okta.Error) (string, bool) {
	var want string
	switch {
	case act.Name == okta.ActionSuspend && oe.StatusCode == http.StatusBadRequest:
		want = "SUSPENDED"
	case act.Name == okta.ActionExpirePassword && (oe.StatusCode == http.StatusBadRequest || oe.StatusCode == http.StatusForbidden):
		want = "PASSWORD_EXPIRED"
	default:
		return "", false
	}
	status, err := inv.c.UserStatus(ctx, user)
	if err != nil || status != want {
		return "", false
	}
	return fmt.Sprintf("already in effect: the user is already %s (Okta answered HTTP %d %s)", status, oe.StatusCode, strings.TrimSpace(oe.Code+" "+firstCause(oe))), true
}

func firstCause(oe *okta.Error) string {
	if len(oe.Causes) > 0 {
		return oe.Causes[0]
	}
	return oe.Summary
}

// failure classifies a refused action like a flow's answer.
func (inv *Invoker) failure(name string, act okta.Action, oe *okta.Error) *flow.Error {
	class := flow.ClassPermanent
	if oe.Retryable() {
		class = flow.ClassRetryable
	}
	detail := act.Name + ": " + oe.Error()
	fe := flow.NewError(name, class, oe.StatusCode, detail, oe)
	if oe.Code != "" {
		fe.Okta = &flow.OktaError{Code: oe.Code, Summary: oe.Summary, ID: oe.ID, Causes: oe.Causes}
	}
	if oe.StatusCode == http.StatusTooManyRequests {
		fe.RetryAfter = time.Second
		if oe.RateLimit != nil {
			fe.RetryAfter = min(max(oe.RateLimit.Wait(inv.now()), time.Second), maxHold)
		}
	}
	return fe
}
