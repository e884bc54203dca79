package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/remediator/remediator/status"
)

// RetryError asks for the delivery to be tried again after Delay.
type RetryError struct {
	Delay time.Duration
	// Why explains the delay for the status record ("HTTP 503", "rate limited: Retry-After 2s").
	Why string
	Err error
}

func (e *RetryError) Error() string {
	if e.Err == nil {
		return "retry: " + e.Why
	}
	return e.Err.Error()
}

func (e *RetryError) Unwrap() error { return e.Err }

// Retry returns an error asking for another attempt after delay (0: the runner decides).
func Retry(delay time.Duration, why string, err error) error {
	return &RetryError{Delay: delay, Why: why, Err: err}
}

// DeadLetterError sends the event to the dead-letter stream with a typed reason.
type DeadLetterError struct {
	Reason status.Reason
	Err    error
}

func (e *DeadLetterError) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return e.Err.Error()
}

func (e *DeadLetterError) Unwrap() error { return e.Err }

// DeadLetter returns an error that dead-letters the event with reason r.
func DeadLetter(r status.Reason, err error) error {
	return &DeadLetterError{Reason: r, Err: err}
}

// DeadLetterf is DeadLetter with a formatted error.
func DeadLetterf(r status.Reason, format string, args ...any) error {
	return DeadLetter(r, fmt.Errorf(format, args...))
}

func asRetry(err error) (*RetryError, bool) {
	var r *RetryError
	ok := errors.As(err, &r)
	return r, ok
}

func asDeadLetter(err error) (*DeadLetterError, bool) {
	var d *DeadLetterError
	ok := errors.As(err, &d)
	return d, ok
}
