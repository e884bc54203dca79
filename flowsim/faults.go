package flowsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// DefaultHang is how long a TimeoutRate call hangs when Faults.Hang is zero: longer than
// Okta's 60 s cut-off, so a correct client always gives up first.
const DefaultHang = 65 * time.Second

// Faults are injected into a flow's answers. The zero value injects nothing. Rates are
// fractions in [0, 1], drawn independently per call.
type Faults struct {
	// ErrorRate is the fraction of calls answered 500, 502 or 503.
	ErrorRate float64
	// TimeoutRate is the fraction of calls that execute (if their idempotency key is new)
	// and then never answer, until the client gives up or Hang elapses, when the
	// connection is dropped: the flow ran, the answer was lost.
	TimeoutRate float64
	// RateLimitRate is the fraction of calls answered 429 (with Retry-After: 1) whatever the
	// token bucket says.
	RateLimitRate float64
	// Latency is added before every answer.
	Latency time.Duration
	// LatencyJitter adds a uniform random extra delay in [0, LatencyJitter).
	LatencyJitter time.Duration
	// Status, if non-zero, answers every call with this status (300–599) instead of running
	// the flow: a broken flow.
	Status int
	// Hang bounds a TimeoutRate hang. Default DefaultHang (65 s).
	Hang time.Duration
}

// Validate reports whether the faults are usable.
func (f Faults) Validate() error {
	var errs []error
	for _, r := range []struct {
		name string
		v    float64
	}{{"errorRate", f.ErrorRate}, {"timeoutRate", f.TimeoutRate}, {"rateLimitRate", f.RateLimitRate}} {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			errs = append(errs, fmt.Errorf("%s %v must be between 0 and 1", r.name, r.v))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"latency", f.Latency}, {"latencyJitter", f.LatencyJitter}, {"hang", f.Hang}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v must not be negative", d.name, d.v))
		}
	}
	if f.Status != 0 && (f.Status < 300 || f.Status > 599) {
		errs = append(errs, fmt.Errorf("status %d must be 0 or between 300 and 599", f.Status))
	}
	return errors.Join(errs...)
}

func (f Faults) hang() time.Duration {
	if f.Hang == 0 {
		return DefaultHang
	}
	return f.Hang
}

// faultsJSON is the wire form: durations are Go duration strings such as "250ms".
type faultsJSON struct {
	ErrorRate     float64 `json:"errorRate"`
	TimeoutRate   float64 `json:"timeoutRate"`
	RateLimitRate float64 `json:"rateLimitRate"`
	Latency       string  `json:"latency"`
	LatencyJitter string  `json:"latencyJitter"`
	Status        int     `json:"status"`
	Hang          string  `json:"hang"`
}

// MarshalJSON writes durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		ErrorRate:     f.ErrorRate,
		TimeoutRate:   f.TimeoutRate,
		RateLimitRate: f.RateLimitRate,
		Latency:       f.Latency.String(),
		LatencyJitter: f.LatencyJitter.String(),
		Status:        f.Status,
		Hang:          f.Hang.String(),
	})
}

// UnmarshalJSON reads the form MarshalJSON writes. Absent fields are zero; unknown fields
// and malformed durations are errors.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	var out Faults
	out.ErrorRate, out.TimeoutRate, out.RateLimitRate, out.Status = j.ErrorRate, j.TimeoutRate, j.RateLimitRate, j.Status
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{{"latency", j.Latency, &out.Latency}, {"latencyJitter", j.LatencyJitter, &out.LatencyJitter}, {"hang", j.Hang, &out.Hang}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return fmt.Errorf("faults: %s: %q is not a duration such as \"250ms\"", d.name, d.in)
		}
		*d.out = v
	}
	*f = out
	return nil
}
