package worker

import (
	"log/slog"
	"time"

	"github.com/remediator/remediator/seal"
)

// configForTests is a complete worker configuration for tests, with small delays so that
// retries come quickly. The caller sets Broker, Validator, Router, Invoker and Flows.
func configForTests() Config {
	return Config{
		Logger:             slog.New(slog.DiscardHandler),
		IntakeConcurrency:  16,
		MaxAttempts:        8,
		QuickRetries:       2,
		QuickRetryDelay:    10 * time.Millisecond,
		RetryBaseDelay:     50 * time.Millisecond,
		RetryMaxDelay:      200 * time.Millisecond,
		ShutdownTimeout:    5 * time.Second,
		AckWait:            30 * time.Second,
		IntakeMaxDeliver:   20,
		DispatchMaxDeliver: 100,
		MaxEventBytes:      256 << 10,
		JobRetention:       time.Hour,
		Replicas:           1,
		Unrouted:           UnroutedSkip,
		Keys:               keysForTests(),
	}
}

// keysForTests is a keyring with one key, "test1", the same in every test: records a test
// writes by hand verify only when signed with it (see SignForTests).
func keysForTests() *seal.Keyring {
	k, err := seal.NewKeyring(seal.Key{ID: "test1", Secret: []byte("worker-test-record-key-0123456789abcdef")})
	if err != nil {
		panic(err)
	}
	return k
}

// breakerForTests opens after 5 consecutive failures and cools down for 30s.
func breakerForTests() BreakerConfig {
	return BreakerConfig{ConsecutiveFailures: 5, Cooldown: 30 * time.Second}
}
