package config_test

import (
	"strings"
	"testing"

	"github.com/remediator/remediator/config"
)

// TestValidateRanges: every value that cannot work is a start-up error naming its key path,
// never a panic or a hot loop later (issue 11, defect 7).
func TestValidateRanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, want string
	}{
		{"negative intake concurrency", "worker: {intakeConcurrency: -1}\n", "worker.intakeConcurrency: must be at least 1, got -1"},
		{"tiny ackWait", "worker: {ackWait: 500ms}\n", "worker.ackWait: must be at least 1s"},
		{"negative quick retries", "worker: {quickRetries: -1}\n", "worker.quickRetries: must not be negative"},
		{"negative quick retry delay", "worker: {quickRetryDelay: -1s}\n", "worker.quickRetryDelay: must be positive"},
		{"intake max deliver zero", "worker: {intakeMaxDeliver: -1}\n", "worker.intakeMaxDeliver: must be at least 1, got -1"},
		{"dispatch consumer state", "worker: {dispatchConsumerState: disk}\n", `worker.dispatchConsumerState: "disk" is not memory or file`},
		{"dispatch consumer state in memory on a cluster", "streams: {replicas: 3}\nworker: {dispatchConsumerState: memory}\n", "worker.dispatchConsumerState: memory is for one server: with streams.replicas 3 use file"},
		{"dispatch max deliver below attempts", "worker: {maxAttempts: 8, dispatchMaxDeliver: 5}\n", "worker.dispatchMaxDeliver: 5 is below worker.maxAttempts 8"},
		{"negative max attempts", "worker: {maxAttempts: -3}\n", "worker.maxAttempts: must be at least 1, got -3"},
		{"negative shutdown timeout", "worker: {shutdownTimeout: -1s}\n", "worker.shutdownTimeout: must be positive"},
		{"retry base above max", "worker: {retryBaseDelay: 10m, retryMaxDelay: 1m}\n", "worker.retryMaxDelay: 1m0s is below worker.retryBaseDelay 10m0s"},
		{"negative retry base", "worker: {retryBaseDelay: -2s}\n", "worker.retryBaseDelay: must be positive"},
		{"quick retry slower than redelivery", "worker: {quickRetryDelay: 10m, retryMaxDelay: 5m}\n", "worker.quickRetryDelay: 10m0s is above worker.retryMaxDelay 5m0s"},
		{"retry longer than the streams keep work", "streams: {maxAge: 1h}\nworker: {retryMaxDelay: 2h}\n", "worker.retryMaxDelay: 2h0m0s is not below streams.maxAge 1h0m0s"},
		{"duplicate window above max age", "streams: {maxAge: 1m, duplicateWindow: 2m}\nworker: {retryMaxDelay: 30s}\n", "streams.duplicateWindow: 2m0s is longer than streams.maxAge 1m0s"},
		{"negative max age", "streams: {maxAge: -1h}\n", "streams.maxAge: must be positive"},
		{"stream max bytes below -1", "streams: {maxBytes: -2}\n", "streams.maxBytes: must be positive, or -1 for no cap"},
		{"stream max bytes too small", "streams: {maxBytes: 1000}\n", "streams.maxBytes: 1000 cannot hold"},
		{"event limit too small", "limits: {maxEventBytes: 10}\n", "limits.maxEventBytes: 10 is not between 1024"},
		{"event limit too large", "limits: {maxEventBytes: 100000000}\n", "limits.maxEventBytes: 100000000 is not between"},
		{"connect attempts zero", "nats: {connectAttempts: 0}\n", "nats.connectAttempts: must be at least 1, or -1 for forever"},
		{"max reconnects below forever", "nats: {maxReconnects: -2}\n", "nats.maxReconnects: must be 0 (never), a positive count, or -1 (forever)"},
		{"negative connect timeout", "nats: {connectTimeout: -1s}\n", "nats.connectTimeout: must be positive"},
		{"password without user", "nats: {passwordEnv: NATS_PASSWORD}\n", "nats.passwordEnv: is set without nats.user"},
		{"cert without key", "nats: {tlsCertFile: /c.pem}\n", "nats.tlsCertFile: and nats.tlsKeyFile must be set together"},
		{"embedded port out of range", "nats: {embedded: {port: 70000}}\n", "nats.embedded.port: 70000 is out of range"},
		{"negative sync interval", "nats: {embedded: {syncInterval: -1s}}\n", "nats.embedded.syncInterval: must be positive"},
		{"negative flow rate", flowDoc("    rateLimit: -1\n"), "flows[0] (notify): rateLimit must be positive"},
		{"negative flow concurrency", flowDoc("    concurrency: -4\n"), "flows[0] (notify): concurrency must be at least 1, got -4"},
		{"blast window without max", flowDoc("    blastRadius: {window: 10m}\n"), "flows[0] (notify): blastRadius needs both max"},
		{"blast max without window", flowDoc("    blastRadius: {max: 5}\n"), "flows[0] (notify): blastRadius needs both max"},
		{"negative blast window", flowDoc("    blastRadius: {max: 5, window: -1m}\n"), "flows[0] (notify): blastRadius needs both max"},
		{"breaker ratio above 1", flowDoc("    breaker: {failureRatio: 1.5}\n"), "flows[0] (notify): breaker.failureRatio must be above 0 and at most 1"},
		{"negative breaker cooldown", flowDoc("    breaker: {cooldown: -1s}\n"), "flows[0] (notify): breaker.cooldown must be positive"},
		{"negative breaker failures", flowDoc("    breaker: {consecutiveFailures: -1}\n"), "flows[0] (notify): breaker.consecutiveFailures must be at least 1"},
		{"negative simulator rate", "simulator: {enabled: true, flows: [{alias: a, rateLimit: -1}]}\n", "simulator.flows[0].rateLimit: must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse([]byte(tt.doc), "remediator.yaml")
			if err == nil {
				t.Fatalf("Parse accepted %q: %+v", tt.doc, c)
			}
			want := "remediator.yaml: " + tt.want
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not say %q:\n%v", want, err)
			}
		})
	}
}

// TestValidateNeverPanics: Validate on a Config built by hand, without SetDefaults, reports
// the problems instead of dereferencing an unset optional value.
func TestValidateNeverPanics(t *testing.T) {
	t.Parallel()
	c := &config.Config{Worker: config.Worker{IntakeConcurrency: -1}}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "worker.intakeConcurrency") {
		t.Errorf("Validate = %v, want an error naming worker.intakeConcurrency", err)
	}
}

// TestExplicitNeverAndForever: the values that mean none, never or forever are explicit, and
// an unset key takes the documented default rather than a zero some later layer reinterprets.
func TestExplicitNeverAndForever(t *testing.T) {
	t.Parallel()
	c, err := config.Parse(nil, "empty.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if *c.NATS.MaxReconnects != config.Forever || *c.NATS.ConnectAttempts != config.Forever {
		t.Errorf("defaults: maxReconnects %d, connectAttempts %d; want -1 (forever) for both", *c.NATS.MaxReconnects, *c.NATS.ConnectAttempts)
	}
	if c.Streams.MaxBytes != config.NoCap {
		t.Errorf("default streams.maxBytes = %d, want -1 (no cap)", c.Streams.MaxBytes)
	}
	c, err = config.Parse([]byte("nats: {maxReconnects: 0, connectAttempts: 1}\nworker: {quickRetries: 0}\n"), "explicit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if *c.NATS.MaxReconnects != 0 || *c.NATS.ConnectAttempts != 1 || *c.Worker.QuickRetries != 0 {
		t.Errorf("explicit maxReconnects 0, connectAttempts 1, quickRetries 0 became %d, %d, %d",
			*c.NATS.MaxReconnects, *c.NATS.ConnectAttempts, *c.Worker.QuickRetries)
	}
}

func TestRequiredMaxPayload(t *testing.T) {
	t.Parallel()
	// NATS' default max_payload (1 MiB) carries the default limit; 256 KiB*4/3 + 64 KiB.
	if got := config.RequiredMaxPayload(config.DefaultMaxEventBytes); got != 262144*4/3+65536 || got > 1<<20 {
		t.Errorf("RequiredMaxPayload(default) = %d", got)
	}
}
