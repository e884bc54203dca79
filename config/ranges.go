package config

import (
	"fmt"
	"time"
)

// Bounds of the size contract: below 1 KiB no real finding fits; above 48 MiB the records built
// around an event (maxEventBytes*4/3 + 64 KiB) exceed NATS' hard 64 MiB payload ceiling.
const (
	minEventBytes = 1 << 10
	maxEventBytes = 48 << 20
	// RecordOverheadBytes is what a record adds around an embedded event (headers, the
	// dead-letter fields, the base64 of the payload is counted by the 4/3 factor).
	RecordOverheadBytes = 64 << 10
	// MaxOutputBytes is the largest limits.maxOutputBytes: with the response headers a record
	// keeps (at most 16 KiB), well inside RecordOverheadBytes.
	MaxOutputBytes = 16 << 10
	// MinAckWait is the shortest worker.ackWait: heartbeats go every third of it.
	MinAckWait = time.Second
)

// RequiredMaxPayload is the smallest NATS max_payload that carries every record the service
// builds around an event of maxEventBytes (PLAN decision 1: maxEventBytes*4/3 + 64 KiB).
func RequiredMaxPayload(maxEventBytes int64) int64 {
	return maxEventBytes*4/3 + RecordOverheadBytes
}

// validateRanges checks the service's numeric settings one by one and against each other. Each
// problem names the key path, so that `worker.ackWait: must be at least 1s` is a start-up
// error and never a panic or a hot loop later.
func (c *Config) validateRanges(bad func(where, format string, args ...any)) {
	n := c.NATS
	if n.ConnectTimeout <= 0 {
		bad("nats.connectTimeout", "must be positive, got %s", n.ConnectTimeout)
	}
	if v := intOr(n.ConnectAttempts, DefaultNATSConnectAttempts); v < 1 && v != Forever {
		bad("nats.connectAttempts", "must be at least 1, or -1 for forever; got %d", v)
	}
	if v := intOr(n.MaxReconnects, DefaultNATSMaxReconnects); v < Forever {
		bad("nats.maxReconnects", "must be 0 (never), a positive count, or -1 (forever); got %d", v)
	}
	if n.PasswordEnv != "" && n.User == "" {
		bad("nats.passwordEnv", "is set without nats.user")
	}
	if (n.TLSCertFile == "") != (n.TLSKeyFile == "") {
		bad("nats.tlsCertFile", "and nats.tlsKeyFile must be set together (mutual TLS)")
	}
	e := n.Embedded
	if e.Port < -1 || e.Port > 65535 {
		bad("nats.embedded.port", "%d is out of range (1-65535, or -1 for a random port)", e.Port)
	}
	if e.SyncInterval < 0 {
		bad("nats.embedded.syncInterval", "must be positive, got %s", e.SyncInterval)
	}

	s := c.Streams
	if s.Storage != "file" && s.Storage != "memory" {
		bad("streams.storage", "%q is not file or memory", s.Storage)
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		bad("streams.replicas", "%d is not between 1 and 5", s.Replicas)
	}
	if s.MaxAge <= 0 {
		bad("streams.maxAge", "must be positive, got %s", s.MaxAge)
	}
	if s.DuplicateWindow <= 0 {
		bad("streams.duplicateWindow", "must be positive, got %s", s.DuplicateWindow)
	} else if s.MaxAge > 0 && s.DuplicateWindow > s.MaxAge {
		// JetStream refuses a de-duplication window longer than the stream keeps messages.
		bad("streams.duplicateWindow", "%s is longer than streams.maxAge %s", s.DuplicateWindow, s.MaxAge)
	}
	if s.MaxBytes < NoCap {
		bad("streams.maxBytes", "must be positive, or -1 for no cap; got %d", s.MaxBytes)
	} else if s.MaxBytes > 0 && s.MaxBytes < 4*RequiredMaxPayload(c.Limits.MaxEventBytes) {
		bad("streams.maxBytes", "%d cannot hold a few records of limits.maxEventBytes %d", s.MaxBytes, c.Limits.MaxEventBytes)
	}

	if l := c.Limits.MaxEventBytes; l < minEventBytes || l > maxEventBytes {
		bad("limits.maxEventBytes", "%d is not between %d (1 KiB) and %d (48 MiB)", l, minEventBytes, maxEventBytes)
	}
	if o := c.Limits.MaxOutputBytes; o < 1 || o > MaxOutputBytes {
		bad("limits.maxOutputBytes", "%d is not between 1 and %d (16 KiB): the output and the response headers kept in a record must stay well inside the %d bytes allowed around an event", o, MaxOutputBytes, RecordOverheadBytes)
	}

	w := c.Worker
	if w.IntakeConcurrency < 1 {
		bad("worker.intakeConcurrency", "must be at least 1, got %d", w.IntakeConcurrency)
	}
	if w.MaxAttempts < 1 {
		bad("worker.maxAttempts", "must be at least 1, got %d", w.MaxAttempts)
	}
	if q := intOr(w.QuickRetries, DefaultQuickRetries); q < 0 {
		bad("worker.quickRetries", "must not be negative (0 turns quick retries off), got %d", q)
	}
	if w.IntakeMaxDeliver < 1 {
		bad("worker.intakeMaxDeliver", "must be at least 1, got %d", w.IntakeMaxDeliver)
	}
	switch {
	case w.DispatchConsumerState != "memory" && w.DispatchConsumerState != "file":
		bad("worker.dispatchConsumerState", "%q is not memory or file", w.DispatchConsumerState)
	case w.DispatchConsumerState == "memory" && c.Streams.Replicas > 1:
		bad("worker.dispatchConsumerState", "memory is for one server: with streams.replicas %d use file (replicated in-memory consumer state lost jobs when a stream leader went down)", c.Streams.Replicas)
	}
	if w.DispatchMaxDeliver < 1 {
		bad("worker.dispatchMaxDeliver", "must be at least 1, got %d", w.DispatchMaxDeliver)
	} else if w.MaxAttempts >= 1 && w.DispatchMaxDeliver < w.MaxAttempts {
		bad("worker.dispatchMaxDeliver", "%d is below worker.maxAttempts %d: JetStream would stop delivering a job before its attempts are spent", w.DispatchMaxDeliver, w.MaxAttempts)
	}
	if w.QuickRetryDelay <= 0 {
		bad("worker.quickRetryDelay", "must be positive, got %s", w.QuickRetryDelay)
	}
	if w.AckWait < MinAckWait {
		bad("worker.ackWait", "must be at least %s, got %s (a live worker sends heartbeats every third of it; keep it well above 10s in production)", MinAckWait, w.AckWait)
	}
	// shutdownTimeout has no relation to ackWait to check: in-flight work keeps heartbeating
	// until it ends or shutdownTimeout cancels it (and it is handed back), so neither bounds the
	// other. What bounds shutdownTimeout is the orchestrator's grace period (deployments tests).
	if w.ShutdownTimeout <= 0 {
		bad("worker.shutdownTimeout", "must be positive, got %s", w.ShutdownTimeout)
	}
	if w.RetryBaseDelay <= 0 {
		bad("worker.retryBaseDelay", "must be positive, got %s", w.RetryBaseDelay)
	}
	if w.RetryMaxDelay < w.RetryBaseDelay {
		bad("worker.retryMaxDelay", "%s is below worker.retryBaseDelay %s", w.RetryMaxDelay, w.RetryBaseDelay)
	}
	if w.QuickRetryDelay > 0 && w.QuickRetryDelay > w.RetryMaxDelay {
		bad("worker.quickRetryDelay", "%s is above worker.retryMaxDelay %s: an in-process retry would wait longer than a redelivery", w.QuickRetryDelay, w.RetryMaxDelay)
	}
	if s.MaxAge > 0 && w.RetryMaxDelay >= s.MaxAge {
		// A job waiting longer than the stream keeps it would expire instead of being retried.
		bad("worker.retryMaxDelay", "%s is not below streams.maxAge %s: a job would expire while it waits for its retry", w.RetryMaxDelay, s.MaxAge)
	}
}

func (b Breaker) validate() []string {
	var p []string
	if b.ConsecutiveFailures < 1 {
		p = append(p, fmt.Sprintf("breaker.consecutiveFailures must be at least 1, got %d", b.ConsecutiveFailures))
	}
	if b.FailureRatio <= 0 || b.FailureRatio > 1 {
		p = append(p, fmt.Sprintf("breaker.failureRatio must be above 0 and at most 1, got %v", b.FailureRatio))
	}
	if b.MinRequests < 1 {
		p = append(p, fmt.Sprintf("breaker.minRequests must be at least 1, got %d", b.MinRequests))
	}
	if b.Window <= 0 {
		p = append(p, fmt.Sprintf("breaker.window must be positive, got %s", b.Window))
	}
	if b.Cooldown <= 0 {
		p = append(p, fmt.Sprintf("breaker.cooldown must be positive, got %s", b.Cooldown))
	}
	return p
}

// intOr reads an optional setting, so that Validate never panics on a Config whose defaults
// were not set.
func intOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}
