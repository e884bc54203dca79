package config

import (
	"strings"
	"time"
)

// The defaults of the whole service, in one place. The worker and the broker take every value
// explicitly from the configuration and keep no numeric defaults of their own, so what is here
// (and in the README's configuration reference) is what runs.
//
// Where "none", "never" or "forever" means something, it is an explicit value, never a zero
// that a later layer reinterprets: quickRetries 0 = none, maxReconnects 0 = never and -1 =
// forever, connectAttempts -1 = forever, maxBytes -1 = no cap, http.addr "off" = no server.
const (
	DefaultNATSConnectTimeout  = 5 * time.Second
	DefaultNATSConnectAttempts = Forever
	DefaultNATSMaxReconnects   = Forever

	DefaultEmbeddedHost         = "127.0.0.1"
	DefaultEmbeddedPort         = 4222
	DefaultEmbeddedStoreDir     = "./data/nats"
	DefaultEmbeddedSyncInterval = 2 * time.Minute

	DefaultStreamMaxAge          = 7 * 24 * time.Hour
	DefaultStreamReplicas        = 1
	DefaultStreamDuplicateWindow = 2 * time.Minute
	DefaultStreamStorage         = "file"
	DefaultStreamMaxBytes        = int64(NoCap)

	DefaultHTTPAddr = "127.0.0.1:8080"
	// DefaultHTTPPprof keeps the profiler off the admin listener (http.pprof).
	DefaultHTTPPprof = false

	// The ops console (config/console.go).
	DefaultConsoleEnabled    = true
	DefaultConsoleTokenEnv   = "REMEDIATOR_CONSOLE_TOKEN"
	DefaultConsolePrincipal  = "console-admin"
	DefaultConsoleSessionTTL = 8 * time.Hour
	DefaultConsoleWindow     = 5 * time.Minute
	DefaultConsoleOIDCSecret = "REMEDIATOR_CONSOLE_OIDC_SECRET"

	DefaultIntakeConcurrency = 16
	DefaultMaxAttempts       = 8
	DefaultQuickRetries      = 2
	DefaultQuickRetryDelay   = 200 * time.Millisecond
	DefaultRetryBaseDelay    = 2 * time.Second
	DefaultRetryMaxDelay     = 5 * time.Minute
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultAckWait           = 30 * time.Second
	DefaultIntakeMaxDeliver  = 20
	// DefaultDispatchMaxDeliver is well above DefaultMaxAttempts: a job is also handed back,
	// without an attempt, while its flow waits for its rate budget or is held.
	DefaultDispatchMaxDeliver = 100
	// DefaultDispatchConsumerState keeps dispatch consumers' state in memory on one server; on
	// a cluster (streams.replicas > 1) it is "file": see WorkerConfig.DispatchConsumerState.
	DefaultDispatchConsumerState = "memory"

	// DefaultMaxEventBytes is the size contract (256 KiB): the largest event accepted.
	DefaultMaxEventBytes = int64(256 << 10)

	DefaultSimulatorAddr      = "127.0.0.1:8090"
	DefaultSimulatorTokenEnv  = "REMEDIATOR_FLOWSIM_TOKEN"
	DefaultSimulatorRateLimit = 10.0

	DefaultFlowTimeout           = 30 * time.Second
	DefaultFlowRateLimit         = 10.0 // Okta Workflows' own per-flow limit
	DefaultFlowConcurrency       = 4
	DefaultFlowExecutionIDHeader = "X-Execution-Id"
	// DefaultActionRateLimit is a native action's rateLimit: above Workflows' 10/s, because
	// Okta's X-Rate-Limit-* headers on each answer are what binds (a spent window holds the
	// action until its reset).
	DefaultActionRateLimit = 20.0
	// DefaultMaxOutputBytes is how much of a flow's output a status record keeps.
	DefaultMaxOutputBytes = 4 << 10

	DefaultBreakerConsecutiveFailures = 5
	DefaultBreakerFailureRatio        = 0.5
	DefaultBreakerMinRequests         = 20
	DefaultBreakerWindow              = time.Minute
	DefaultBreakerCooldown            = 30 * time.Second

	// DefaultUnrouted records an event that runs no flow as skipped, not as a dead letter.
	DefaultUnrouted = UnroutedSkip

	DefaultRiskRuleStatus = "ACTIVE"
	DefaultRiskLevel      = "ANY"

	// people.groups look-ups (okta.groupCache): a membership change in Okta is seen within
	// a minute; 10,000 users is a few MB at most.
	DefaultGroupCacheTTL  = time.Minute
	DefaultGroupCacheSize = 10000

	// okta.systemLog.backfill: the risk event types remediator takes, polled every 30s, a
	// first start looking an hour back, 100 events a page (Okta's default page size).
	DefaultBackfillFilter   = `eventType eq "user.risk.detect" or eventType eq "user.risk.change"`
	DefaultBackfillInterval = 30 * time.Second
	DefaultBackfillLookback = time.Hour
	DefaultBackfillPageSize = 100
)

// Explicit values for "forever" and "no cap" (0 means none/never where a count allows it).
const (
	Forever = -1
	NoCap   = -1
)

// SetDefaults fills every field left unset with its documented default. It is the one place
// defaults are decided; a field whose zero is meaningful (quickRetries, maxReconnects,
// connectAttempts) is a pointer, so that "unset" and an explicit 0 stay apart.
func (c *Config) SetDefaults() {
	n := &c.NATS
	setDuration(&n.ConnectTimeout, DefaultNATSConnectTimeout)
	setIntPtr(&n.ConnectAttempts, DefaultNATSConnectAttempts)
	setIntPtr(&n.MaxReconnects, DefaultNATSMaxReconnects)
	e := &c.NATS.Embedded
	setString(&e.Host, DefaultEmbeddedHost)
	setInt(&e.Port, DefaultEmbeddedPort)
	setString(&e.StoreDir, DefaultEmbeddedStoreDir)
	setDuration(&e.SyncInterval, DefaultEmbeddedSyncInterval)
	if e.Auth == nil { // authenticated unless turned off explicitly (issue 13)
		e.Auth = new(true)
	}
	s := &c.Streams
	setDuration(&s.MaxAge, DefaultStreamMaxAge)
	setInt(&s.Replicas, DefaultStreamReplicas)
	setDuration(&s.DuplicateWindow, DefaultStreamDuplicateWindow)
	setString(&s.Storage, DefaultStreamStorage)
	if s.MaxBytes == 0 { // a 0-byte stream cannot hold anything: unset
		s.MaxBytes = DefaultStreamMaxBytes
	}
	setString(&c.HTTP.Addr, DefaultHTTPAddr)
	if c.HTTP.Console == nil {
		c.HTTP.Console = new(DefaultConsoleEnabled)
	}
	con := &c.Console
	if con.Token.Env == "" && con.Token.File == "" {
		con.Token.Env = DefaultConsoleTokenEnv
	}
	setString(&con.Principal, DefaultConsolePrincipal)
	setDuration(&con.SessionTTL, DefaultConsoleSessionTTL)
	setDuration(&con.Window, DefaultConsoleWindow)
	if con.OIDC.Issuer != "" && con.OIDC.ClientSecret.Env == "" && con.OIDC.ClientSecret.File == "" {
		con.OIDC.ClientSecret.Env = DefaultConsoleOIDCSecret
	}
	w := &c.Worker
	setInt(&w.IntakeConcurrency, DefaultIntakeConcurrency)
	setInt(&w.MaxAttempts, DefaultMaxAttempts)
	setIntPtr(&w.QuickRetries, DefaultQuickRetries)
	setDuration(&w.QuickRetryDelay, DefaultQuickRetryDelay)
	setDuration(&w.RetryBaseDelay, DefaultRetryBaseDelay)
	setDuration(&w.RetryMaxDelay, DefaultRetryMaxDelay)
	setDuration(&w.ShutdownTimeout, DefaultShutdownTimeout)
	setDuration(&w.AckWait, DefaultAckWait)
	setInt(&w.IntakeMaxDeliver, DefaultIntakeMaxDeliver)
	setInt(&w.DispatchMaxDeliver, DefaultDispatchMaxDeliver)
	if w.DispatchConsumerState == "" {
		w.DispatchConsumerState = DefaultDispatchConsumerState
		if c.Streams.Replicas > 1 {
			w.DispatchConsumerState = "file"
		}
	}
	if c.Limits.MaxEventBytes == 0 {
		c.Limits.MaxEventBytes = DefaultMaxEventBytes
	}
	setInt(&c.Limits.MaxOutputBytes, DefaultMaxOutputBytes)
	sim := &c.Simulator
	setString(&sim.Addr, DefaultSimulatorAddr)
	setString(&sim.TokenEnv, DefaultSimulatorTokenEnv)
	for i := range sim.Flows {
		setFloat(&sim.Flows[i].RateLimit, DefaultSimulatorRateLimit)
	}
	for i := range c.Flows {
		f := &c.Flows[i]
		setDuration(&f.Timeout, DefaultFlowTimeout)
		if f.IsAction() {
			setFloat(&f.RateLimit, DefaultActionRateLimit)
		}
		setFloat(&f.RateLimit, DefaultFlowRateLimit)
		setInt(&f.Concurrency, DefaultFlowConcurrency)
		setString(&f.ExecutionIDHeader, DefaultFlowExecutionIDHeader)
		b := &f.Breaker
		setInt(&b.ConsecutiveFailures, DefaultBreakerConsecutiveFailures)
		setFloat(&b.FailureRatio, DefaultBreakerFailureRatio)
		setInt(&b.MinRequests, DefaultBreakerMinRequests)
		setDuration(&b.Window, DefaultBreakerWindow)
		setDuration(&b.Cooldown, DefaultBreakerCooldown)
		for j := range f.Inputs {
			f.Inputs[j].Type = f.Inputs[j].typ()
		}
	}
	for i := range c.ResourceSets {
		s := &c.ResourceSets[i]
		for j, p := range s.Permissions {
			if q := canonicalPermission(p); q == PermissionView || q == PermissionRun {
				s.Permissions[j] = q
			}
		}
	}
	setString(&c.Unrouted, DefaultUnrouted)
	c.Ingress.SetDefaults() // its defaults are listed in ingress.go, next to its keys
	c.setOktaDefaults()     // likewise in okta.go
	c.setOktaPolicyDefaults()
	for i := range c.RiskRules {
		r := &c.RiskRules[i]
		r.Action = strings.ToUpper(strings.TrimSpace(r.Action))
		if r.Flow != "" {
			setString(&r.Action, RiskActionRunWorkflow)
		}
		setString(&r.Action, RiskActionNone)
		setString(&r.Status, DefaultRiskRuleStatus)
		setString(&r.Conditions.Level, DefaultRiskLevel)
		r.Status = strings.ToUpper(r.Status)
		r.Conditions.Level = strings.ToUpper(r.Conditions.Level)
	}
}

// setOktaPolicyDefaults fills okta.groupCache and okta.systemLog.backfill when the okta
// block is configured.
func (c *Config) setOktaPolicyDefaults() {
	if !c.Okta.Enabled() {
		return
	}
	g := &c.Okta.GroupCache
	setDuration(&g.TTL, DefaultGroupCacheTTL)
	setInt(&g.Size, DefaultGroupCacheSize)
	b := &c.Okta.SystemLog.Backfill
	setString(&b.Filter, DefaultBackfillFilter)
	setDuration(&b.Interval, DefaultBackfillInterval)
	setDuration(&b.Lookback, DefaultBackfillLookback)
	setInt(&b.PageSize, DefaultBackfillPageSize)
}

func setString(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setIntPtr(p **int, v int) {
	if *p == nil {
		*p = &v
	}
}

func setFloat(p *float64, v float64) {
	if *p == 0 {
		*p = v
	}
}

func setDuration(p *time.Duration, v time.Duration) {
	if *p == 0 {
		*p = v
	}
}
