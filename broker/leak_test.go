package broker_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/internal/testwait"
)

// pullGoroutines returns the stacks of goroutines of a pull that still
// run: any in the broker's Consumer methods, and nats.go's pull reader while
// it waits for the server (its select). A reader past that point is on its
// way out: nats.go closes the batch's channel, which ends Fetch's read, just
// before its last step (unsubscribing), so it may still be seen exiting.
func pullGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		waiting := strings.Contains(header, "[select")
		if strings.Contains(g, "broker.(*Consumer)") || (waiting && strings.Contains(g, "jetstream.(*pullConsumer).fetch")) {
			found = append(found, g)
		}
	}
	return found
}

// A Fetch whose context ends while its pull waits on the server returns only
// when nothing of that pull is left running (issue 11, defect 12): before,
// the pull's reader goroutines outlived the call until the server's expiry,
// and goleak failed the suite when a test ended in that window.
//
// Not parallel: it inspects every goroutine of the process, and parallel
// tests only run once the sequential ones are done.
func TestCancelledFetchLeavesNoGoroutine(t *testing.T) {
	b := brokertest.Connect(t)
	c := newConsumer(t, b, "leak")

	for range 3 {
		ctx, cancel := context.WithCancel(testCtx(t))
		done := make(chan error, 1)
		go func() {
			_, err := c.Fetch(ctx, 10, time.Minute)
			done <- err
		}()
		testwait.Until(t, "the pull request to wait", func() bool {
			infos, err := b.ConsumerInfos(testCtx(t), broker.StreamEvents)
			return err == nil && len(infos) == 1 && infos[0].NumWaiting > 0
		})
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Fetch = %v, want context.Canceled", err)
		}
		if g := pullGoroutines(); len(g) > 0 {
			t.Fatalf("after Fetch returned, %d goroutines of its pull still run:\n%s", len(g), strings.Join(g, "\n\n"))
		}
	}
}
