package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
	"github.com/remediator/remediator/internal/testwait"
)

func TestGetAndDeleteMessage(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	ack, err := b.Publish(ctx, "remediation.dlq.invalid", []byte("bad"),
		broker.PublishOptions{MsgID: "dlq-1", Header: map[string][]string{"Reason": {"schema"}}})
	if err != nil {
		t.Fatal(err)
	}

	m, err := b.GetMessage(ctx, broker.StreamDLQ, ack.Sequence)
	if err != nil {
		t.Fatalf("GetMessage: %v", err)
	}
	if m.Stream != broker.StreamDLQ || m.Sequence != ack.Sequence || m.Subject != "remediation.dlq.invalid" ||
		string(m.Data) != "bad" || m.Header["Reason"][0] != "schema" || m.Time.IsZero() {
		t.Fatalf("GetMessage = %+v", m)
	}

	if err := b.DeleteMessage(ctx, broker.StreamDLQ, ack.Sequence); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	_, err = b.GetMessage(ctx, broker.StreamDLQ, ack.Sequence)
	if !errors.Is(err, broker.ErrMessageNotFound) {
		t.Fatalf("GetMessage after delete: err = %v, want ErrMessageNotFound", err)
	}
	if !strings.Contains(err.Error(), broker.StreamDLQ) {
		t.Fatalf("error does not name the stream: %v", err)
	}
	if err := b.DeleteMessage(ctx, broker.StreamDLQ, ack.Sequence); !errors.Is(err, broker.ErrMessageNotFound) {
		t.Fatalf("DeleteMessage twice: err = %v, want ErrMessageNotFound", err)
	}
	if err := b.DeleteMessage(ctx, broker.StreamDLQ, 999); !errors.Is(err, broker.ErrMessageNotFound) {
		t.Fatalf("DeleteMessage beyond the last sequence: err = %v, want ErrMessageNotFound", err)
	}
	if _, err := b.GetMessage(ctx, "NO_SUCH_STREAM", 1); !errors.Is(err, broker.ErrStreamNotFound) {
		t.Fatalf("GetMessage on a missing stream: err = %v, want ErrStreamNotFound", err)
	}
	if err := b.DeleteMessage(ctx, "NO_SUCH_STREAM", 1); !errors.Is(err, broker.ErrStreamNotFound) {
		t.Fatalf("DeleteMessage on a missing stream: err = %v, want ErrStreamNotFound", err)
	}
}

// publishStatus writes succeeded/failed records alternately: s1 f2 s3 f4 s5 …
func publishStatus(t *testing.T, b *broker.Broker, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		outcome := "succeeded"
		if i%2 == 0 {
			outcome = "failed"
		}
		mustPublish(t, b, "remediation.status."+outcome, fmt.Sprint(i))
	}
}

func scan(t *testing.T, b *broker.Broker, filter string, startSeq uint64, startTime time.Time, limit int) []string {
	t.Helper()
	var got []string
	err := b.Scan(testCtx(t), broker.StreamStatus, filter, startSeq, startTime, func(m *broker.StoredMessage) bool {
		got = append(got, string(m.Data))
		return limit <= 0 || len(got) < limit
	})
	if err != nil {
		t.Fatalf("Scan(%q, %d, %v): %v", filter, startSeq, startTime, err)
	}
	return got
}

func TestScan(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)

	if got := scan(t, b, "", 0, time.Time{}, 0); len(got) != 0 {
		t.Fatalf("Scan of an empty stream = %v", got)
	}
	publishStatus(t, b, 6)

	tests := []struct {
		name      string
		filter    string
		startSeq  uint64
		startTime time.Time
		limit     int
		want      []string
	}{
		{name: "all", want: []string{"1", "2", "3", "4", "5", "6"}},
		{name: "filter", filter: "remediation.status.failed", want: []string{"2", "4", "6"}},
		{name: "wildcard filter", filter: "remediation.status.*", want: []string{"1", "2", "3", "4", "5", "6"}},
		{name: "from sequence", startSeq: 4, want: []string{"4", "5", "6"}},
		{name: "filter from sequence", filter: "remediation.status.succeeded", startSeq: 2, want: []string{"3", "5"}},
		{name: "fn stops", limit: 2, want: []string{"1", "2"}},
		{name: "past the end", startSeq: 7, want: nil},
		{name: "no match", filter: "remediation.status.rejected", want: nil},
		{name: "from a time after all", startTime: time.Now().Add(time.Hour), want: nil},
		{name: "from a time before all", startTime: time.Now().Add(-time.Hour), want: []string{"1", "2", "3", "4", "5", "6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			got := scan(t, b, tt.filter, tt.startSeq, tt.startTime, tt.limit)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Scan took %s; it should not wait for new messages", d)
			}
		})
	}

}

func TestScanStopsAtTheEndAsOfTheCall(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	publishStatus(t, b, 6)
	var got []string
	err := b.Scan(testCtx(t), broker.StreamStatus, "remediation.status.failed", 0, time.Time{}, func(m *broker.StoredMessage) bool {
		got = append(got, string(m.Data))
		mustPublish(t, b, "remediation.status.failed", "later")
		return true
	})
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if want := []string{"2", "4", "6"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v (nothing written after the call)", got, want)
	}
}

func TestScanLeavesNoConsumers(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	publishStatus(t, b, 3)
	scan(t, b, "", 0, time.Time{}, 0)
	scan(t, b, "remediation.status.failed", 0, time.Time{}, 0)
	infos, err := b.ConsumerInfos(testCtx(t), broker.StreamStatus)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 0 {
		t.Fatalf("Scan left consumers behind: %+v", infos)
	}
	if err := b.Scan(testCtx(t), "NO_SUCH_STREAM", "", 0, time.Time{}, func(*broker.StoredMessage) bool { return true }); !errors.Is(err, broker.ErrStreamNotFound) {
		t.Fatalf("Scan on a missing stream: err = %v, want ErrStreamNotFound", err)
	}
}

// tail runs Tail in the background and returns a channel of message data and
// a function that stops it and returns Tail's error.
func tail(t *testing.T, b *broker.Broker, filter string, last int) (<-chan string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- b.Tail(ctx, broker.StreamStatus, filter, last, func(m *broker.StoredMessage) { got <- string(m.Data) })
	}()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Tail did not return after its context was cancelled")
			return nil
		}
	}
	t.Cleanup(func() { cancel() })
	return got, stop
}

func receive(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no message from Tail")
		return ""
	}
}

func TestTailLastN(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	publishStatus(t, b, 7)

	tests := []struct {
		name   string
		filter string
		last   int
		want   []string
	}{
		{name: "last 2", last: 2, want: []string{"6", "7"}},
		{name: "last 2 filtered", filter: "remediation.status.failed", last: 2, want: []string{"4", "6"}},
		{name: "last 1 filtered", filter: "remediation.status.succeeded", last: 1, want: []string{"7"}},
		{name: "more than stored", filter: "remediation.status.failed", last: 50, want: []string{"2", "4", "6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ch, stop := tail(t, b, tt.filter, tt.last)
			var got []string
			for range tt.want {
				got = append(got, receive(t, ch))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if err := stop(); err != nil {
				t.Fatalf("Tail: %v", err)
			}
			select {
			case extra := <-ch:
				t.Fatalf("Tail delivered an extra message %q", extra)
			default:
			}
		})
	}
}

func TestTailFollowsNewMessages(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	mustPublish(t, b, "remediation.status.succeeded", "old")

	ch, stop := tail(t, b, "remediation.status.failed", 0)
	// Tail has no "ready" signal: publish until the first new message shows
	// up. Anything published before it started must not be delivered.
	var first string
	testwait.Until(t, "Tail to deliver a new message", func() bool {
		mustPublish(t, b, "remediation.status.succeeded", "filtered out")
		mustPublish(t, b, "remediation.status.failed", "new")
		select {
		case first = <-ch:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	if first != "new" {
		t.Fatalf("first tailed message = %q, want new", first)
	}
	if _, err := b.Publish(ctx, "remediation.status.failed", []byte("next"), broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	for s := receive(t, ch); s != "next"; s = receive(t, ch) {
		if s != "new" {
			t.Fatalf("Tail delivered %q", s)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Tail: %v", err)
	}
}

func TestStreamInfoAndConsumerInfos(t *testing.T) {
	t.Parallel()
	b := brokertest.Connect(t)
	ctx := testCtx(t)
	publishStatus(t, b, 5)

	info, err := b.StreamInfo(ctx, broker.StreamStatus, true)
	if err != nil {
		t.Fatalf("StreamInfo: %v", err)
	}
	if info.Name != broker.StreamStatus || info.Messages != 5 || info.FirstSeq != 1 || info.LastSeq != 5 || info.Bytes == 0 {
		t.Fatalf("StreamInfo = %+v", info)
	}
	if info.Subjects["remediation.status.succeeded"] != 3 || info.Subjects["remediation.status.failed"] != 2 {
		t.Fatalf("Subjects = %v", info.Subjects)
	}
	info, err = b.StreamInfo(ctx, broker.StreamStatus, false)
	if err != nil || info.Subjects != nil {
		t.Fatalf("StreamInfo without counts: %+v, %v", info, err)
	}
	if _, err := b.StreamInfo(ctx, "NO_SUCH_STREAM", false); !errors.Is(err, broker.ErrStreamNotFound) {
		t.Fatalf("StreamInfo on a missing stream: err = %v, want ErrStreamNotFound", err)
	}

	none, err := b.ConsumerInfos(ctx, broker.StreamStatus)
	if err != nil || none == nil || len(none) != 0 {
		t.Fatalf("ConsumerInfos with no consumers = %#v, %v; want an empty slice", none, err)
	}
	for _, name := range []string{"b-reader", "a-reader"} {
		if _, err := b.Consumer(ctx, consumerConfig(broker.StreamStatus, name)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.Consumer(ctx, consumerConfig(broker.StreamStatus, "a-reader"))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(ctx, 2, time.Second)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Fetch = %d, %v", len(msgs), err)
	}
	if err := msgs[0].Nak(0); err != nil {
		t.Fatal(err)
	}
	testwait.Until(t, "the redelivery to be counted", func() bool {
		infos, err := b.ConsumerInfos(ctx, broker.StreamStatus)
		if err != nil || len(infos) != 2 {
			return false
		}
		// Fetch the nak'ed message again so it is pending as redelivered.
		if infos[0].NumRedelivered == 0 {
			_, _ = c.Fetch(ctx, 1, 0)
			return false
		}
		return true
	})
	infos, err := b.ConsumerInfos(ctx, broker.StreamStatus)
	if err != nil {
		t.Fatal(err)
	}
	a, bb := infos[0], infos[1]
	if a.Name != "a-reader" || bb.Name != "b-reader" || a.Stream != broker.StreamStatus {
		t.Fatalf("ConsumerInfos not sorted by name: %+v", infos)
	}
	// The fetch in the wait loop may take the next new message before the
	// server has processed the nak, so a-reader holds two or three messages;
	// every message is either held or still pending, and one was redelivered.
	if a.NumAckPending < 2 || a.NumAckPending > 3 || a.NumAckPending+a.NumPending != 5 || a.NumRedelivered != 1 {
		t.Fatalf("a-reader = %+v, want 2 or 3 ack pending, the rest pending, 1 redelivered", a)
	}
	if bb.NumPending != 5 || bb.NumAckPending != 0 {
		t.Fatalf("b-reader = %+v, want 5 pending", bb)
	}
}
