package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/remediator/remediator/event"
)

// Config is the whole configuration. Every field's comment states its default.
type Config struct {
	NATS      NATS       `yaml:"nats"`
	Streams   Streams    `yaml:"streams"`
	HTTP      HTTP       `yaml:"http"`
	Worker    Worker     `yaml:"worker"`
	Simulator Simulator  `yaml:"simulator"`
	Limits    Limits     `yaml:"limits"`
	Flows     []Flow     `yaml:"flows"`
	Routes    []Route    `yaml:"routes"`
	RiskRules []RiskRule `yaml:"entityRiskPolicy"`
	// ResourceSets say who may view and run which flows. Default: none, so no flow may run.
	ResourceSets []ResourceSet `yaml:"resourceSets"`
	// DefaultPrincipals name, per event subject, the principal of an event that carries none
	// (no oktaUserId, no Remediator-Principal header). Only remediation.events.ispm takes one.
	// Default: none, so such an event is dead-lettered as unauthorized.
	DefaultPrincipals map[string]string `yaml:"defaultPrincipals"`
	// Ingress is the public HTTP listener for Okta event hooks, the ISPM webhook and the
	// publish API (see config/ingress.go).
	Ingress IngressConfig `yaml:"ingress"`
	// Unrouted says what becomes of a valid event that runs no flow: an ISPM issue no route
	// takes, an entity-risk event that matches no custom rule (Okta's catch-all only logs) or
	// a log-only rule. "skip" (default): a terminal skipped status naming why, and nothing on
	// the dead-letter stream, so a feed of LOW-risk detections does not flood the DLQ ops
	// watch. "deadLetter": dead-lettered as no_route, to be seen and replayed.
	Unrouted string `yaml:"unrouted"`
	// Okta is the org remediator works against as an API Services app (see config/okta.go).
	Okta OktaConfig `yaml:"okta"`
	// Security holds the record keys (see config/security.go).
	Security Security `yaml:"security"`
	// Console is how people sign in to the ops console (see config/console.go).
	Console ConsoleConfig `yaml:"console"`
	// UI links the console to other tools (see config/console.go).
	UI UIConfig `yaml:"ui"`

	// source is the file the configuration came from ("built-in default" otherwise).
	source string
}

// NATS says where JetStream is. With URL empty, remediator embeds its own server.
type NATS struct {
	// URL of an external NATS cluster, e.g. "nats://nats-0:4222,nats://nats-1:4222". Default:
	// empty, which starts an embedded server (see Embedded). Overridden by --nats-url / NATS_URL.
	URL string `yaml:"url"`
	// CredsFile is a NATS .creds file (JWT and NKey seed). Default: none.
	CredsFile string `yaml:"credsFile"`
	// NKeyFile is an NKey seed file. Default: none.
	NKeyFile string `yaml:"nkeyFile"`
	// User for user/password auth; the password is read from the environment variable named
	// by PasswordEnv, never from this file. Default: none.
	User        string `yaml:"user"`
	PasswordEnv string `yaml:"passwordEnv"`
	// TLS client settings. Default: none (TLS is still used when the URL is tls://).
	TLSCAFile   string `yaml:"tlsCAFile"`
	TLSCertFile string `yaml:"tlsCertFile"`
	TLSKeyFile  string `yaml:"tlsKeyFile"`
	// InboxPrefix replaces _INBOX in reply subjects, for a server that lets each role subscribe
	// only to its own prefix (deployments/nats/remediator-auth.conf: _INBOX_worker,
	// _INBOX_operator, _INBOX_publisher). Default: _INBOX; the embedded server's roles set theirs.
	InboxPrefix string `yaml:"inboxPrefix"`
	// ConnectTimeout bounds one dial and handshake with a server. Default 5s.
	ConnectTimeout time.Duration `yaml:"connectTimeout"`
	// ConnectAttempts is how many times `run` tries the first connection, with backoff
	// (100ms doubling to 5s), before it gives up. Default -1: forever, so that a worker started
	// by an orchestrator before NATS waits for it (readiness stays false meanwhile). 1 gives
	// up at the first failure. The one-shot CLI commands always fail fast.
	ConnectAttempts *int `yaml:"connectAttempts"`
	// MaxReconnects is how many times to reconnect after an established connection drops.
	// Default -1: forever, as a long-running worker should. 0: never reconnect.
	MaxReconnects *int `yaml:"maxReconnects"`
	// Embedded configures the in-process server used when URL is empty.
	Embedded Embedded `yaml:"embedded"`
}

// Embedded configures the in-process NATS server.
type Embedded struct {
	// Host to listen on. Default "127.0.0.1" (other local clients, such as the nats CLI, can publish).
	Host string `yaml:"host"`
	// Port to listen on. Default 4222.
	Port int `yaml:"port"`
	// StoreDir holds JetStream's files; keep it to keep streams across restarts. Default "./data/nats".
	StoreDir string `yaml:"storeDir"`
	// SyncInterval is how often JetStream fsyncs to disk. Default 2m (the server's own). A small value
	// such as 1s trades a little throughput for less data at risk if the machine loses power.
	SyncInterval time.Duration `yaml:"syncInterval"`
	// Auth turns authentication on: the server admits only remediator's three roles (worker,
	// operator, publisher), whose NKey seeds it generates once in <storeDir>/credentials. Default
	// true; false leaves the port open to anyone who can reach it.
	Auth *bool `yaml:"auth"`
}

// Streams configures the JetStream streams remediator provisions.
type Streams struct {
	// MaxAge is how long events, statuses and dead letters are kept, for audit and replay. Default 168h (7 days).
	MaxAge time.Duration `yaml:"maxAge"`
	// Replicas per stream. Default 1; use 3 on a 3-node cluster.
	Replicas int `yaml:"replicas"`
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values to drop duplicate
	// publishes. Default 2m. Memory grows with the number of ids published in the window.
	DuplicateWindow time.Duration `yaml:"duplicateWindow"`
	// Storage is "file" or "memory". Default "file".
	Storage string `yaml:"storage"`
	// MaxBytes caps each stream's size in bytes; the oldest messages are dropped beyond it.
	// Default -1: no cap.
	MaxBytes int64 `yaml:"maxBytes"`
}

// Limits bound what the service accepts.
type Limits struct {
	// MaxEventBytes is the largest event (its JSON body) the service accepts. A larger event is
	// dead-lettered as too_large without its payload, and ingress refuses it with 413. At start,
	// the service checks that NATS can carry records built around an event this large:
	// maxEventBytes*4/3 + 64 KiB must not exceed the server's max_payload. Default 262144 (256 KiB).
	MaxEventBytes int64 `yaml:"maxEventBytes"`
	// MaxOutputBytes is how much of a flow's output (its response body, or Okta's answer to a
	// native action) a status record and a dead letter keep. Default 4096 (4 KiB); between 1
	// and 16384, so that records stay well inside the 64 KiB allowed around an event.
	MaxOutputBytes int `yaml:"maxOutputBytes"`
}

// HTTP configures the health and metrics server.
type HTTP struct {
	// Addr to listen on for /healthz, /readyz and /metrics. Default "127.0.0.1:8080"; "off" disables it.
	Addr string `yaml:"addr"`
	// Console serves the ops console at /ui/ on this listener. Default true; it is never open:
	// see the console block (config/console.go) for how people sign in.
	Console *bool `yaml:"console"`
	// Pprof serves Go's profiler (net/http/pprof, under /debug/pprof/) on this listener, to
	// see where a busy or idle worker spends its time. It shows the program's internals:
	// switch it on only where the listener is private (the default address is loopback).
	// Default false (DefaultHTTPPprof).
	Pprof bool `yaml:"pprof"`
}

// Worker tunes the pipeline.
type Worker struct {
	// IntakeConcurrency bounds events being validated and routed at once per replica. Default 16.
	IntakeConcurrency int `yaml:"intakeConcurrency"`
	// MaxAttempts is the attempt budget of one flow invocation, counting every JetStream
	// delivery; beyond it the event is dead-lettered as retries_exhausted. Default 8.
	MaxAttempts int `yaml:"maxAttempts"`
	// QuickRetries are in-process retries of a transient failure before the event is handed back
	// to JetStream with a delay. Default 2. 0: none.
	QuickRetries *int `yaml:"quickRetries"`
	// QuickRetryDelay is the first in-process retry delay; it doubles per quick retry. Default 200ms.
	QuickRetryDelay time.Duration `yaml:"quickRetryDelay"`
	// RetryBaseDelay is the first JetStream redelivery delay; it doubles per delivery (with
	// jitter) up to RetryMaxDelay. Defaults 2s and 5m.
	RetryBaseDelay time.Duration `yaml:"retryBaseDelay"`
	RetryMaxDelay  time.Duration `yaml:"retryMaxDelay"`
	// IntakeMaxDeliver caps JetStream deliveries of one event to intake. On the last one, a
	// failure that would be retried is dead-lettered instead; what cannot even be
	// dead-lettered stays in JetStream with an alert (the MAX_DELIVERIES advisory). Default 20.
	IntakeMaxDeliver int `yaml:"intakeMaxDeliver"`
	// DispatchMaxDeliver caps JetStream deliveries of one job to dispatch, as
	// IntakeMaxDeliver. Jobs are also handed back without an attempt (rate budget, breaker,
	// blast-radius cap), so it must be at least maxAttempts, and is best well above. Default 100.
	DispatchMaxDeliver int `yaml:"dispatchMaxDeliver"`
	// DispatchConsumerState is where the server keeps the dispatch consumers' delivery state:
	// "memory" or "file". Default "memory" on one server, "file" on a cluster
	// (streams.replicas > 1), which refuses "memory". Jobs wait in the stream either way
	// (streams.storage); with "file" the server rewrites a state file per consumer after acks,
	// which with many flows costs more than the jobs. What "memory" loses on a server restart
	// is the delivery count and retry delay of the jobs in flight: they are delivered again at
	// once. On a replicated cluster, replicated in-memory consumer state left jobs undelivered
	// after a stream leader's loss in the cluster-fault benchmark, hence "file" there.
	DispatchConsumerState string `yaml:"dispatchConsumerState"`
	// ShutdownTimeout is how long in-flight events may take to finish on SIGTERM. Default 30s.
	// Keep the orchestrator's grace period above it plus about 10s for the NATS drain.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// AckWait is how long JetStream waits before redelivering an event whose worker went silent
	// (crashed, killed, partitioned); a live worker extends it with heartbeats every third of
	// it. Default 30s; at least 1s.
	AckWait time.Duration `yaml:"ackWait"`
}

// Simulator configures the built-in Okta Workflows simulator.
type Simulator struct {
	// Enabled starts the simulator inside `remediator run`. Default false; true in the shipped default configuration.
	Enabled bool `yaml:"enabled"`
	// Addr to listen on. Default "127.0.0.1:8090".
	Addr string `yaml:"addr"`
	// TokenEnv names the environment variable holding the client token the simulated flows
	// expect. Default "REMEDIATOR_FLOWSIM_TOKEN"; when unset, `run` generates a random token.
	TokenEnv string `yaml:"tokenEnv"`
	// Flows served by the simulator.
	Flows []SimFlow `yaml:"flows"`
}

// SimFlow is one flow served by the simulator.
type SimFlow struct {
	// Alias is the path segment of /api/flo/{alias}/invoke.
	Alias string `yaml:"alias"`
	// Name is for people.
	Name string `yaml:"name"`
	// RateLimit in invocations per second. Default 10, as Okta Workflows; must be positive.
	RateLimit float64 `yaml:"rateLimit"`
}

// Flow is an Okta Workflows API Endpoint flow remediator may invoke.
type Flow struct {
	// Name identifies the flow in routes, subjects and status records: letters, digits, '-' and '_'.
	Name string `yaml:"name"`
	// URL is the invoke URL: https://{org}.workflows.okta.com/api/flo/{alias}/invoke (no ?clientToken=).
	// Required unless Action is set.
	URL string `yaml:"url"`
	// Action names one of Okta's native actions instead of a flow URL: clearSessions,
	// suspend, expirePassword, removeFromGroup or setUserRisk (see config/action.go). Such an
	// entry has no url, auth or clientToken and needs the okta block. Default: none.
	Action string `yaml:"action"`
	// Params are the action's parameters: groupId for removeFromGroup, riskLevel (HIGH,
	// MEDIUM or LOW) for setUserRisk. Default: none.
	Params map[string]string `yaml:"params"`
	// Auth is how the flow is secured in Okta: clientToken (default) or oauth2, a Bearer
	// token of the okta block's app (see config/okta.go).
	Auth string `yaml:"auth"`
	// ClientToken says where the flow's client token is: an environment variable or a file.
	// The token itself never appears in configuration. Required with auth: clientToken only.
	ClientToken Secret `yaml:"clientToken"`
	// Timeout per call. Default 30s; must be below Okta's 60s cut-off.
	Timeout time.Duration `yaml:"timeout"`
	// RateLimit in invocations per second for this flow, shared by all replicas. Default 10
	// (20 for a native action, whose real limit comes from Okta's X-Rate-Limit-* headers);
	// must be positive.
	RateLimit float64 `yaml:"rateLimit"`
	// Concurrency bounds calls in flight to this flow per replica. Default 4.
	Concurrency int `yaml:"concurrency"`
	// ExecutionIDHeader is the response header holding the execution id. Default "X-Execution-Id".
	ExecutionIDHeader string `yaml:"executionIdHeader"`
	// Inputs maps event inputs to the flow's inputs (see [Flow.MapInputs]). Default: none, and
	// the flow receives every input of the event.
	Inputs []Input `yaml:"inputs"`
	// DryRun records each would-be invocation (a dry_run status with its inputs) instead of
	// making it. Default false. Operators can also switch it at run time: `remediator flows dry-run`.
	DryRun bool `yaml:"dryRun"`
	// BlastRadius caps invocations per window across replicas; beyond it, events are held in
	// JetStream and a held status says why. Default: no cap (neither max nor window set).
	BlastRadius BlastRadius `yaml:"blastRadius"`
	// Breaker tunes the circuit breaker.
	Breaker Breaker `yaml:"breaker"`
	// WorkflowID is the integer id Okta's entity-risk policy uses for the delegated flow this
	// flow stands for (a RUN_WORKFLOW action's workflow.id): `remediator policy import` and
	// `policy diff` map Okta's rules to this flow by it. Default: none (0).
	WorkflowID int64 `yaml:"workflowId"`
}

// BlastRadius is a cap on a flow's invocations: at most Max per Window. Both or neither.
type BlastRadius struct {
	// Max invocations per Window; at least 1 when set.
	Max int `yaml:"max"`
	// Window, e.g. 10m; positive when set.
	Window time.Duration `yaml:"window"`
}

// Breaker tunes a flow's circuit breaker.
type Breaker struct {
	// ConsecutiveFailures open the breaker. Default 5.
	ConsecutiveFailures int `yaml:"consecutiveFailures"`
	// FailureRatio of at least MinRequests calls within Window also opens it. Defaults 0.5,
	// 20 and 1m.
	FailureRatio float64       `yaml:"failureRatio"`
	MinRequests  int           `yaml:"minRequests"`
	Window       time.Duration `yaml:"window"`
	// Cooldown is how long it stays open before a probe call. Default 30s.
	Cooldown time.Duration `yaml:"cooldown"`
}

// Secret points at a secret value without containing it.
type Secret struct {
	// Env names an environment variable.
	Env string `yaml:"env"`
	// File is a path whose content is the secret (re-read when it changes).
	File string `yaml:"file"`
}

// Route sends matching ISPM issues to flows. Every route that matches adds its flows.
type Route struct {
	// Name identifies the route in status records and logs.
	Name string `yaml:"name"`
	// Match conditions; an empty list matches anything; values match case-insensitively.
	Match IssueMatch `yaml:"match"`
	// Flows to run, by name.
	Flows []string `yaml:"flows"`
}

// IssueMatch are the conditions of a [Route]. All non-empty lists must match.
type IssueMatch struct {
	Titles         []string `yaml:"titles"`
	Categories     []string `yaml:"categories"`
	Severities     []string `yaml:"severities"`
	EntityTypes    []string `yaml:"entityTypes"`
	SourceProducts []string `yaml:"sourceProducts"`
}

// RiskRule is an entity-risk policy rule, as Okta models it: rules are tried in priority
// order (lowest first) and the first that matches runs its flow.
type RiskRule struct {
	Name string `yaml:"name"`
	// Priority: lower runs first; custom rules need 1..98 (99 is Okta's default catch-all).
	Priority int `yaml:"priority"`
	// Status is "ACTIVE" (default) or "INACTIVE".
	Status     string         `yaml:"status"`
	Conditions RiskConditions `yaml:"conditions"`
	// Flow is the flow the rule runs. Default: none, a log-only rule (Okta's "no further
	// action"): an event it matches stops there and is recorded as skipped.
	Flow string `yaml:"flow"`
	// Action is Okta's rule action: RUN_WORKFLOW (runs Flow), TERMINATE_ALL_SESSIONS (runs
	// Flow if given, else the flow with action: clearSessions) or NONE (log only). Default:
	// RUN_WORKFLOW with a flow, NONE without (see config/riskaction.go).
	Action string `yaml:"action"`
}

// RiskConditions are the conditions of a [RiskRule].
type RiskConditions struct {
	// Level is ANY (default), LOW, MEDIUM or HIGH.
	Level string `yaml:"level"`
	// DetectionTypes: include XOR exclude, values from Okta's eight riskDetectionTypes.
	DetectionTypes IncludeExclude `yaml:"detectionTypes"`
	// Users and Groups by Okta id.
	Users  IncludeExclude `yaml:"users"`
	Groups IncludeExclude `yaml:"groups"`
}

// IncludeExclude is a pair of id lists.
type IncludeExclude struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML is the shipped default configuration file.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Default returns the shipped default configuration: an embedded NATS server and flows on the
// built-in simulator.
func Default() (*Config, error) {
	c, err := parse(defaultYAML, builtInSource)
	if err != nil {
		return nil, fmt.Errorf("the built-in default configuration is broken: %w", err)
	}
	return c, nil
}

const builtInSource = "built-in default configuration"

// BuiltIn reports whether c is the shipped default configuration ([Default]): the dev run,
// which may generate the secrets it needs, where a configuration file must supply them.
func (c *Config) BuiltIn() bool { return c.source == builtInSource }

// Load reads a configuration file. Unknown keys are errors.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(b, path)
}

// Parse reads configuration from YAML bytes; source names them in errors.
func Parse(b []byte, source string) (*Config, error) { return parse(b, source) }

func parse(b []byte, source string) (*Config, error) {
	c := &Config{source: source}
	// An empty file is valid: it means "all defaults".
	if err := decodeYAML(b, c); err != nil {
		return nil, prefixLines(source, err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// prefixLines puts "source: " before each problem, one problem a line.
func prefixLines(source string, err error) error {
	var errs []error
	for l := range strings.Lines(err.Error()) {
		errs = append(errs, fmt.Errorf("%s: %s", source, strings.TrimSuffix(l, "\n")))
	}
	return errors.Join(errs...)
}

// Source names where the configuration came from.
func (c *Config) Source() string {
	if c.source == "" {
		return "configuration"
	}
	return c.source
}

// Flow returns the flow named name.
func (c *Config) Flow(name string) (*Flow, bool) {
	for i := range c.Flows {
		if c.Flows[i].Name == name {
			return &c.Flows[i], true
		}
	}
	return nil, false
}

// Values of the unrouted key.
const (
	// UnroutedSkip records an unrouted event as a terminal skipped status.
	UnroutedSkip = "skip"
	// UnroutedDeadLetter dead-letters an unrouted event as no_route.
	UnroutedDeadLetter = "deadLetter"
)

// OktaTimeout is Okta Workflows' cut-off for an API Endpoint call.
const OktaTimeout = 60 * time.Second

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks the configuration and reports every problem at once, each naming the
// source, the entry and what is wrong.
func (c *Config) Validate() error {
	var errs []error
	bad := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", c.Source(), where, fmt.Sprintf(format, args...)))
	}
	c.validateRanges(bad)
	if c.Unrouted != UnroutedSkip && c.Unrouted != UnroutedDeadLetter {
		bad("unrouted", "%q must be %q or %q", c.Unrouted, UnroutedSkip, UnroutedDeadLetter)
	}
	flows := map[string]bool{}
	for i, f := range c.Flows {
		where := fmt.Sprintf("flows[%d] (%s)", i, f.Name)
		switch {
		case !nameRE.MatchString(f.Name):
			bad(where, "name %q must be 1-64 letters, digits, '-' or '_'", f.Name)
		case flows[f.Name]:
			bad(where, "flow %q is defined twice", f.Name)
		}
		flows[f.Name] = true
		if !f.IsAction() && !strings.HasPrefix(f.URL, "https://") && !strings.HasPrefix(f.URL, "http://") {
			bad(where, "url %q must be an http(s) invoke URL", f.URL)
		}
		if strings.Contains(f.URL, "clientToken=") {
			bad(where, "url carries a clientToken query parameter; move the token to clientToken.env or clientToken.file")
		}
		if !f.IsAction() && f.Auth == FlowAuthClientToken && (f.ClientToken.Env == "") == (f.ClientToken.File == "") {
			bad(where, "clientToken needs exactly one of env or file")
		}
		if f.Timeout <= 0 || f.Timeout >= OktaTimeout {
			bad(where, "timeout %s must be above 0 and below Okta's %s cut-off", f.Timeout, OktaTimeout)
		}
		if f.RateLimit <= 0 {
			bad(where, "rateLimit must be positive (invocations per second), got %v", f.RateLimit)
		}
		if f.Concurrency < 1 {
			bad(where, "concurrency must be at least 1, got %d", f.Concurrency)
		}
		if br := f.BlastRadius; br.Max < 0 || br.Window < 0 || (br.Max > 0) != (br.Window > 0) {
			bad(where, "blastRadius needs both max (at least 1) and window (e.g. 10m), or neither; got max %d, window %s", br.Max, br.Window)
		}
		for _, e := range f.Breaker.validate() {
			bad(where, "%s", e)
		}
	}
	for i, r := range c.Routes {
		where := fmt.Sprintf("routes[%d] (%s)", i, r.Name)
		if r.Name == "" {
			bad(where, "name is required")
		}
		if len(r.Flows) == 0 {
			bad(where, "flows is empty")
		}
		for _, f := range r.Flows {
			if !flows[f] {
				bad(where, "flow %q is not defined under flows", f)
			}
		}
	}
	for i, r := range c.RiskRules {
		where := fmt.Sprintf("entityRiskPolicy[%d] (%s)", i, r.Name)
		for _, e := range r.validate(flows) {
			bad(where, "%s", e)
		}
	}
	kinds := c.flowKinds()
	for i, f := range c.Flows {
		k := kinds[f.Name]
		if len(k) == 0 {
			k = []event.Kind{event.KindISPMIssue, event.KindEntityRisk}
		}
		for _, e := range f.validateInputs(k) {
			bad(fmt.Sprintf("flows[%d] (%s)", i, f.Name), "%s", e)
		}
	}
	c.validateResourceSets(bad, flows)
	c.validateDefaultPrincipals(bad)
	c.Ingress.validate(bad)
	c.validateOkta(bad)
	c.validateActions(bad)
	c.validateSecurity(bad)
	c.validateConsole(bad)
	seen := map[int]string{}
	for _, r := range c.RiskRules {
		if other, ok := seen[r.Priority]; ok && r.Priority != 0 {
			bad(fmt.Sprintf("entityRiskPolicy (%s)", r.Name), "priority %d is also used by rule %q; priorities must be unique", r.Priority, other)
		}
		seen[r.Priority] = r.Name
	}
	c.validateRiskActions(bad) // riskaction.go
	c.validateOktaPolicy(bad)  // oktapolicy.go
	if c.Simulator.Enabled {
		for i, f := range c.Simulator.Flows {
			if !nameRE.MatchString(f.Alias) {
				bad(fmt.Sprintf("simulator.flows[%d]", i), "alias %q must be letters, digits, '-' or '_'", f.Alias)
			}
			if f.RateLimit <= 0 {
				bad(fmt.Sprintf("simulator.flows[%d].rateLimit", i), "must be positive (invocations per second), got %v", f.RateLimit)
			}
		}
	}
	return errors.Join(errs...)
}

func (r RiskRule) validate(flows map[string]bool) []string {
	var p []string
	if r.Name == "" {
		p = append(p, "name is required")
	}
	if r.Priority < 1 || r.Priority >= 99 {
		p = append(p, fmt.Sprintf("priority %d: custom rules need 1..98 (99 is the default catch-all)", r.Priority))
	}
	if r.Status != "ACTIVE" && r.Status != "INACTIVE" {
		p = append(p, fmt.Sprintf("status %q is not ACTIVE or INACTIVE", r.Status))
	}
	switch r.Conditions.Level {
	case "ANY", "LOW", "MEDIUM", "HIGH":
	default:
		p = append(p, fmt.Sprintf("conditions.level %q is not ANY, LOW, MEDIUM or HIGH", r.Conditions.Level))
	}
	dt := r.Conditions.DetectionTypes
	if len(dt.Include) > 0 && len(dt.Exclude) > 0 {
		p = append(p, "conditions.detectionTypes sets both include and exclude; Okta allows one or the other")
	}
	for _, d := range append(append([]string{}, dt.Include...), dt.Exclude...) {
		if !event.IsDetectionType(d) {
			p = append(p, fmt.Sprintf("conditions.detectionTypes: unknown detection type %q", d))
		}
	}
	p = append(p, r.Conditions.validatePeople()...)
	// No flow is a log-only rule, as Okta allows: it stops evaluation and runs nothing.
	if r.Flow != "" && !flows[r.Flow] {
		p = append(p, fmt.Sprintf("flow %q is not defined under flows", r.Flow))
	}
	return p
}
