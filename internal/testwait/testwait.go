// Package testwait is the one way tests wait for something to become true: a condition
// re-checked when an event announces a change (a KV watch, a stream tail, a consumer, a
// channel the code under test closes), with a slow poll only as the fallback for states
// nothing announces, and a generous timeout so that a loaded 2-core CI machine does not fail
// a test that is merely slow. It replaces the per-package waitFor loops that slept a few
// milliseconds between rescans of a stream.
package testwait

import (
	"reflect"
	"testing"
	"time"
)

// DefaultTimeout bounds a wait. It is generous on purpose: a wait ends as soon as its
// condition holds, so the timeout only decides how long a broken test takes to fail.
const DefaultTimeout = 30 * time.Second

// Polling bounds: the first re-check comes soon, later ones back off, so a fallback poll costs
// little when the condition takes seconds.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 250 * time.Millisecond
)

// Option changes how [Until] waits.
type Option func(*settings)

type settings struct {
	timeout time.Duration
	wake    []reflect.Value          // receive-able channels
	current []func() <-chan struct{} // broadcast channels, fetched anew before each check
}

// Timeout replaces [DefaultTimeout].
func Timeout(d time.Duration) Option { return func(s *settings) { s.timeout = d } }

// WakeOn re-checks the condition as soon as ch delivers a value or is closed, instead of
// waiting for the next poll. Pass the channel fed by a KV watch, a stream tail or a consumer
// that sees the change the test waits for. A closed channel wakes once and is then ignored.
func WakeOn[T any](ch <-chan T) Option {
	return func(s *settings) {
		if ch != nil {
			s.wake = append(s.wake, reflect.ValueOf(ch))
		}
	}
}

// WakeWhen is [WakeOn] for a broadcast that closes its channel and replaces it on each change
// (as otlptest.Receiver does): current returns the channel to wait on, and is called before
// each check, so that a change between the check and the wait is not missed.
func WakeWhen(current func() <-chan struct{}) Option {
	return func(s *settings) { s.current = append(s.current, current) }
}

// Until waits until cond returns true, and fails the test (naming what it waited for) if it
// does not within the timeout. cond is called from the test's goroutine.
func Until(t testing.TB, what string, cond func() bool, opts ...Option) {
	t.Helper()
	UntilNil(t, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}, opts...)
}

type notYet struct{}

func (notYet) Error() string { return "condition not met" }

var errNotYet error = notYet{}

// UntilNil waits until check returns nil, and fails the test with check's last error if it
// does not within the timeout.
func UntilNil(t testing.TB, what string, check func() error, opts ...Option) {
	t.Helper()
	if err := Wait(check, opts...); err != nil {
		t.Fatalf("timed out waiting for %s: %v", what, err)
	}
}

// Wait is UntilNil without a test: it returns nil once check does, or check's last error when
// the timeout ends. For helpers that report failures themselves.
func Wait(check func() error, opts ...Option) error {
	s := settings{timeout: DefaultTimeout}
	for _, o := range opts {
		o(&s)
	}
	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()
	// Cases: 0 the deadline, 1 the poll, then the broadcast channels, then the wake channels.
	cases := make([]reflect.SelectCase, 2+len(s.current), 2+len(s.current)+len(s.wake))
	cases[0] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline.C)}
	for _, ch := range s.wake {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: ch})
	}
	poll := firstPoll
	for {
		for i, current := range s.current {
			cases[2+i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(current())}
		}
		err := check()
		if err == nil {
			return nil
		}
		timer := time.NewTimer(poll)
		cases[1] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)}
		chosen, _, ok := reflect.Select(cases)
		timer.Stop()
		switch {
		case chosen == 0:
			if err := check(); err == nil { // one last look: the change may have just landed
				return nil
			}
			return err
		case chosen == 1:
			poll = min(2*poll, maxPoll)
		case chosen >= 2+len(s.current) && !ok: // a closed wake channel: stop selecting on it
			cases[chosen].Chan = reflect.ValueOf((chan struct{})(nil))
		}
	}
}
