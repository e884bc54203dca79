package broker_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testCtx is t.Context bounded so that a hung call fails the test instead of
// the whole run.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// logBuffer is a concurrency-safe sink for a text slog handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// take returns what was logged so far and resets the buffer.
func (l *logBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.buf.String()
	l.buf.Reset()
	return s
}

func newLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo})), lb
}

// connectLogged connects to a fresh server with a logger whose output the
// test can read; the streams are not provisioned.
func connectLogged(t *testing.T) (*broker.Broker, *logBuffer) {
	t.Helper()
	srv := brokertest.Server(t)
	logger, lb := newLogger()
	b, err := broker.Connect(testCtx(t), brokertest.ConnConfig(srv.ClientURL()), logger)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(b.Close)
	return b, lb
}

func mustPublish(t *testing.T, b *broker.Broker, subject, data string) broker.PubAck {
	t.Helper()
	ack, err := b.Publish(testCtx(t), subject, []byte(data), broker.PublishOptions{})
	if err != nil {
		t.Fatalf("Publish(%s): %v", subject, err)
	}
	return ack
}

func countLines(s, substr string) int {
	n := 0
	for line := range strings.Lines(s) {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

func containsText(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}
