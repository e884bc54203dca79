package flow

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Class says what the caller should do after a failed invocation.
type Class int

const (
	// ClassRetryable: try again later with the same idempotency key. It is the zero value
	// on purpose, so an unclassified failure is retried (a bounded number of times) rather
	// than dropped.
	ClassRetryable Class = iota
	// ClassPermanent: trying again cannot help; dead-letter the job.
	ClassPermanent
	// ClassSuccess is what [Classify] returns for 2xx. An [*Error] never carries it.
	ClassSuccess
)

// String returns "retryable", "permanent" or "success".
func (c Class) String() string {
	switch c {
	case ClassRetryable:
		return "retryable"
	case ClassPermanent:
		return "permanent"
	case ClassSuccess:
		return "success"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Classify maps an HTTP status of an invoke response to a class: 2xx is ClassSuccess; 408,
// 425, 429 and 5xx are ClassRetryable; everything else (other 4xx, 1xx, 3xx, nonsense) is
// ClassPermanent.
func Classify(status int) Class {
	switch {
	case status >= 200 && status <= 299:
		return ClassSuccess
	case status == http.StatusRequestTimeout, status == http.StatusTooEarly,
		status == http.StatusTooManyRequests, status >= 500 && status <= 599:
		return ClassRetryable
	}
	return ClassPermanent
}

// Sentinels wrapped by [Error.Err] when nothing was sent because the call itself is wrong.
var (
	// ErrInvalidInput: a Request.Inputs value, key or header cannot be sent to a flow.
	ErrInvalidInput = errors.New("invalid flow input")
	// ErrInvalidEndpoint: the Endpoint's URL or Timeout is unusable.
	ErrInvalidEndpoint = errors.New("invalid flow endpoint")
)

// Error is a failed invocation. Use errors.As to get it from the error Invoke returns.
type Error struct {
	// Class says whether to retry.
	Class Class
	// StatusCode is the HTTP status of the response, 0 when no response came.
	StatusCode int
	// RetryAfter is the server's requested wait, from Retry-After (delta-seconds or
	// HTTP-date) or, on a 429, X-Rate-Limit-Reset; 0 when none was given.
	RetryAfter time.Duration
	// Okta is Okta's error object from the response body, when the body is one
	// ({errorCode, errorSummary, errorId, errorCauses}); nil otherwise.
	Okta *OktaError
	// OutcomeUnknown is true when the request was fully sent and then the call timed out,
	// was cancelled, or the connection broke before a response: the flow may have run.
	OutcomeUnknown bool
	// Err is the underlying cause: context.Canceled or context.DeadlineExceeded (wrapped),
	// a network error, ErrInvalidInput, ErrInvalidEndpoint, or a credential error. It is nil
	// for an HTTP status error.
	Err error

	flow   string // flow name, for the message
	detail string // already sanitised account of the failure
}

// Error returns a one-line account, such as
// "flow suspend-user: HTTP 503 Service Unavailable: <start of body>" or
// "flow suspend-user: no response within 30s (outcome unknown)". It never contains
// credentials or the URL's query string.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("flow")
	if e.flow != "" {
		b.WriteString(" ")
		b.WriteString(e.flow)
	}
	b.WriteString(": ")
	switch {
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
		if t := http.StatusText(e.StatusCode); t != "" {
			b.WriteString(" ")
			b.WriteString(t)
		}
		if e.detail != "" {
			b.WriteString(": ")
			b.WriteString(e.detail)
		}
	case e.detail != "":
		b.WriteString(e.detail)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString(e.Class.String() + " failure")
	}
	return b.String()
}

// NewError builds an [*Error] for a target that is not a Workflows flow (an Okta native
// action, see package action), so that the dispatcher handles both alike. Its message is
// "flow <name>: HTTP <status> <text>: <detail>" (or "flow <name>: <detail>" without a
// status); detail must already be free of secrets. err is what Unwrap returns.
func NewError(name string, class Class, statusCode int, detail string, err error) *Error {
	return &Error{Class: class, StatusCode: statusCode, Err: err, flow: name, detail: detail}
}

// OktaError is Okta's error object as an API or flow answers it.
type OktaError struct {
	Code    string   `json:"errorCode"`
	Summary string   `json:"errorSummary"`
	ID      string   `json:"errorId,omitempty"`
	Causes  []string `json:"errorCauses,omitempty"`
}

// parseOktaError reads an Okta error object from a (possibly truncated) body, with secrets
// redacted; nil when the body is not one.
func parseOktaError(body []byte, secrets []string) *OktaError {
	var raw struct {
		ErrorCode    string `json:"errorCode"`
		ErrorSummary string `json:"errorSummary"`
		ErrorID      string `json:"errorId"`
		ErrorCauses  []struct {
			ErrorSummary string `json:"errorSummary"`
		} `json:"errorCauses"`
	}
	if json.Unmarshal(body, &raw) != nil || raw.ErrorCode == "" {
		return nil
	}
	clean := func(s string) string { return snippet([]byte(s), errorBodyBytes, secrets) }
	oe := &OktaError{Code: clean(raw.ErrorCode), Summary: clean(raw.ErrorSummary), ID: clean(raw.ErrorID)}
	for _, c := range raw.ErrorCauses {
		if c.ErrorSummary != "" {
			oe.Causes = append(oe.Causes, clean(c.ErrorSummary))
		}
	}
	return oe
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// maxRetryAfter caps a server-requested wait.
const maxRetryAfter = time.Hour

// retryAfter reads the wait a failed response asks for. Retry-After wins; X-Rate-Limit-Reset
// is used only for 429, because Okta sends it on every response. Absolute times are measured
// from the response's Date header when it parses, else from now.
func retryAfter(status int, h http.Header, now time.Time) time.Duration {
	ref := now
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		ref = d
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			return clampSeconds(float64(secs))
		}
		if at, err := http.ParseTime(v); err == nil {
			return clampDuration(at.Sub(ref))
		}
	}
	if status == http.StatusTooManyRequests {
		if v := strings.TrimSpace(h.Get("X-Rate-Limit-Reset")); v != "" {
			if epoch, err := strconv.ParseInt(v, 10, 64); err == nil {
				return clampSeconds(float64(epoch) - float64(ref.UnixNano())/1e9)
			}
		}
	}
	return 0
}

func clampSeconds(s float64) time.Duration {
	if math.IsNaN(s) || s <= 0 {
		return 0
	}
	if s >= maxRetryAfter.Seconds() {
		return maxRetryAfter
	}
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}

func clampDuration(d time.Duration) time.Duration {
	return min(max(d, 0), maxRetryAfter)
}

// snippet turns up to n bytes of a response body into one printable line with secrets
// removed.
func snippet(body []byte, n int, secrets []string) string {
	// Redact before cutting, so that a secret straddling the cut leaves no visible prefix.
	s := redact(strings.ToValidUTF8(string(body), ""), secrets)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// redact replaces each secret in s.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}
