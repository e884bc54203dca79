package testwait_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/remediator/remediator/internal/testwait"
)

func TestUntilReturnsAtOnce(t *testing.T) {
	t.Parallel()
	calls := 0
	testwait.Until(t, "true", func() bool { calls++; return true })
	if calls != 1 {
		t.Errorf("cond called %d times, want 1", calls)
	}
}

// TestWakeOnChecksWhenNotified: a wake-up re-checks at once, long before the fallback poll
// would (the poll is pushed far out by a slow start here: the poll only backs off).
func TestWakeOnChecksWhenNotified(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	wake := make(chan struct{}, 1)
	go func() {
		ready.Store(true)
		wake <- struct{}{}
	}()
	testwait.Until(t, "the flag", ready.Load, testwait.WakeOn(wake))
}

func TestWaitReportsTheLastError(t *testing.T) {
	t.Parallel()
	want := errors.New("still 2 of 3")
	err := testwait.Wait(func() error { return want }, testwait.Timeout(50*time.Millisecond))
	if !errors.Is(err, want) {
		t.Errorf("Wait = %v, want the check's last error", err)
	}
}

func TestClosedWakeChannelDoesNotSpin(t *testing.T) {
	t.Parallel()
	closed := make(chan int)
	close(closed)
	calls := 0
	err := testwait.Wait(func() error { calls++; return errors.New("no") }, testwait.Timeout(100*time.Millisecond), testwait.WakeOn((<-chan int)(closed)))
	if err == nil {
		t.Fatal("Wait succeeded")
	}
	// A closed channel selected in a loop would call check thousands of times in 100ms.
	if calls > 40 {
		t.Errorf("check called %d times in 100ms: a closed wake channel makes Wait spin", calls)
	}
}

// TestWakeWhenFollowsABroadcast: a close-and-replace broadcast wakes each wait.
func TestWakeWhenFollowsABroadcast(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	changed := make(chan struct{})
	n := 0
	current := func() <-chan struct{} { mu.Lock(); defer mu.Unlock(); return changed }
	go func() {
		for range 3 {
			mu.Lock()
			n++
			close(changed)
			changed = make(chan struct{})
			mu.Unlock()
		}
	}()
	testwait.Until(t, "three changes", func() bool { mu.Lock(); defer mu.Unlock(); return n == 3 }, testwait.WakeWhen(current))
}
