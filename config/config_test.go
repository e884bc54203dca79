package config_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/config"
)

func TestDefault(t *testing.T) {
	t.Parallel()
	c, err := config.Default()
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Default().Validate: %v", err)
	}
	var flows []string
	for _, f := range c.Flows {
		flows = append(flows, f.Name)
	}
	wantFlows := []string{"suspend-okta-account", "reset-password", "clear-sessions", "notify-slack"}
	if !slices.Equal(flows, wantFlows) {
		t.Errorf("flows = %v, want %v", flows, wantFlows)
	}
	if !c.Simulator.Enabled {
		t.Error("simulator is not enabled in the built-in configuration")
	}
	// Every flow of the built-in configuration is served by the simulator.
	var aliases []string
	for _, f := range c.Simulator.Flows {
		aliases = append(aliases, f.Alias)
	}
	for _, f := range c.Flows {
		if !slices.Contains(aliases, f.Name) {
			t.Errorf("flow %q is not served by the simulator (aliases %v)", f.Name, aliases)
		}
		if !strings.HasPrefix(f.URL, "http://"+c.Simulator.Addr+"/") {
			t.Errorf("flow %q url %q does not point at the simulator on %s", f.Name, f.URL, c.Simulator.Addr)
		}
		if f.ClientToken.Env != c.Simulator.TokenEnv {
			t.Errorf("flow %q takes its token from $%s, the simulator expects $%s", f.Name, f.ClientToken.Env, c.Simulator.TokenEnv)
		}
	}
	if len(c.Routes) == 0 {
		t.Error("no routes")
	}
	if len(c.RiskRules) == 0 {
		t.Error("no entity-risk rules")
	}
	if got := c.Source(); !strings.Contains(got, "built-in") {
		t.Errorf("Source() = %q, want it to say built-in", got)
	}
	if _, ok := c.Flow("notify-slack"); !ok {
		t.Error(`Flow("notify-slack") not found`)
	}
	if _, ok := c.Flow("no-such-flow"); ok {
		t.Error(`Flow("no-such-flow") found`)
	}
}

func TestDefaultYAMLIsACopy(t *testing.T) {
	t.Parallel()
	b := config.DefaultYAML()
	if len(b) == 0 {
		t.Fatal("DefaultYAML is empty")
	}
	b[0] = '!'
	if config.DefaultYAML()[0] == '!' {
		t.Error("DefaultYAML returns the embedded bytes themselves; a caller can corrupt them")
	}
}

// defaultCase is one documented default: README's row for readmeKey says `readme`, and
// SetDefaults must produce want.
type defaultCase struct {
	readmeKey string // the first cell of the README row, without backquotes
	readme    string // the default as README writes it, without backquotes
	got       func(*config.Config) any
	want      any
}

var documentedDefaults = []defaultCase{
	{"nats.embedded.host", "127.0.0.1", func(c *config.Config) any { return c.NATS.Embedded.Host }, "127.0.0.1"},
	{"nats.embedded.storeDir", "./data/nats", func(c *config.Config) any { return c.NATS.Embedded.StoreDir }, "./data/nats"},
	{"streams.maxAge", "168h", func(c *config.Config) any { return c.Streams.MaxAge }, 168 * time.Hour},
	{"streams.replicas", "1", func(c *config.Config) any { return c.Streams.Replicas }, 1},
	{"streams.duplicateWindow", "2m", func(c *config.Config) any { return c.Streams.DuplicateWindow }, 2 * time.Minute},
	{"streams.storage", "file", func(c *config.Config) any { return c.Streams.Storage }, "file"},
	{"http.addr", "127.0.0.1:8080", func(c *config.Config) any { return c.HTTP.Addr }, "127.0.0.1:8080"},
	{"http.console", "true", func(c *config.Config) any { return *c.HTTP.Console }, true},
	{"console.token", "{env: REMEDIATOR_CONSOLE_TOKEN}", func(c *config.Config) any { return c.Console.Token.Env }, "REMEDIATOR_CONSOLE_TOKEN"},
	{"console.principal", "console-admin", func(c *config.Config) any { return c.Console.Principal }, "console-admin"},
	{"console.sessionTtl", "8h", func(c *config.Config) any { return c.Console.SessionTTL }, 8 * time.Hour},
	{"console.window", "5m", func(c *config.Config) any { return c.Console.Window }, 5 * time.Minute},
	{"worker.intakeConcurrency", "16", func(c *config.Config) any { return c.Worker.IntakeConcurrency }, 16},
	{"worker.maxAttempts", "8", func(c *config.Config) any { return c.Worker.MaxAttempts }, 8},
	{"worker.quickRetries", "2", func(c *config.Config) any { return *c.Worker.QuickRetries }, 2},
	{"worker.retryBaseDelay", "2s", func(c *config.Config) any { return c.Worker.RetryBaseDelay }, 2 * time.Second},
	{"worker.retryBaseDelay", "5m", func(c *config.Config) any { return c.Worker.RetryMaxDelay }, 5 * time.Minute},
	{"worker.shutdownTimeout", "30s", func(c *config.Config) any { return c.Worker.ShutdownTimeout }, 30 * time.Second},
	{"worker.ackWait", "30s", func(c *config.Config) any { return c.Worker.AckWait }, 30 * time.Second},
	{"worker.intakeMaxDeliver", "20", func(c *config.Config) any { return c.Worker.IntakeMaxDeliver }, 20},
	{"worker.dispatchMaxDeliver", "100", func(c *config.Config) any { return c.Worker.DispatchMaxDeliver }, 100},
	{"worker.dispatchConsumerState", "memory", func(c *config.Config) any { return c.Worker.DispatchConsumerState }, "memory"},
	{"worker.quickRetryDelay", "200ms", func(c *config.Config) any { return c.Worker.QuickRetryDelay }, 200 * time.Millisecond},
	{"nats.connectTimeout", "5s", func(c *config.Config) any { return c.NATS.ConnectTimeout }, 5 * time.Second},
	{"nats.connectAttempts", "-1", func(c *config.Config) any { return *c.NATS.ConnectAttempts }, -1},
	{"nats.maxReconnects", "-1", func(c *config.Config) any { return *c.NATS.MaxReconnects }, -1},
	{"nats.embedded.syncInterval", "2m", func(c *config.Config) any { return c.NATS.Embedded.SyncInterval }, 2 * time.Minute},
	{"streams.maxBytes", "-1", func(c *config.Config) any { return c.Streams.MaxBytes }, int64(-1)},
	{"unrouted", "skip", func(c *config.Config) any { return c.Unrouted }, "skip"},
	{"limits.maxEventBytes", "262144", func(c *config.Config) any { return c.Limits.MaxEventBytes }, int64(262144)},
	{"limits.maxOutputBytes", "4096", func(c *config.Config) any { return c.Limits.MaxOutputBytes }, 4096},
	{"flows[].breaker.consecutiveFailures", "5", func(c *config.Config) any { return c.Flows[0].Breaker.ConsecutiveFailures }, 5},
	{"flows[].breaker.consecutiveFailures", "30s", func(c *config.Config) any { return c.Flows[0].Breaker.Cooldown }, 30 * time.Second},
	{"flows[].breaker.failureRatio", "0.5", func(c *config.Config) any { return c.Flows[0].Breaker.FailureRatio }, 0.5},
	{"flows[].breaker.failureRatio", "20", func(c *config.Config) any { return c.Flows[0].Breaker.MinRequests }, 20},
	{"flows[].breaker.failureRatio", "1m", func(c *config.Config) any { return c.Flows[0].Breaker.Window }, time.Minute},
	{"flows[].timeout", "30s", func(c *config.Config) any { return c.Flows[0].Timeout }, 30 * time.Second},
	{"flows[].rateLimit", "10", func(c *config.Config) any { return c.Flows[0].RateLimit }, 10.0},
	{"flows[].concurrency", "4", func(c *config.Config) any { return c.Flows[0].Concurrency }, 4},
	{"flows[].executionIdHeader", "X-Execution-Id", func(c *config.Config) any { return c.Flows[0].ExecutionIDHeader }, "X-Execution-Id"},
	{"simulator.enabled", "false", func(c *config.Config) any { return c.Simulator.Enabled }, false},
	{"simulator.addr", "127.0.0.1:8090", func(c *config.Config) any { return c.Simulator.Addr }, "127.0.0.1:8090"},
	{"simulator.tokenEnv", "REMEDIATOR_FLOWSIM_TOKEN", func(c *config.Config) any { return c.Simulator.TokenEnv }, "REMEDIATOR_FLOWSIM_TOKEN"},
}

// readmeRow returns the row of the README configuration table whose first cell starts with key.
func readmeRow(t *testing.T, readme, key string) string {
	t.Helper()
	for line := range strings.Lines(readme) {
		if strings.HasPrefix(line, "| `"+key+"`") {
			return line
		}
	}
	t.Fatalf("README has no configuration row for `%s`", key)
	return ""
}

func TestSetDefaultsMatchREADME(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	c := &config.Config{
		Flows:     []config.Flow{{Name: "f", URL: "https://x/invoke", ClientToken: config.Secret{Env: "T"}}},
		RiskRules: []config.RiskRule{{Name: "r", Priority: 1, Flow: "f"}},
		Simulator: config.Simulator{Flows: []config.SimFlow{{Alias: "f"}}},
	}
	c.SetDefaults()
	for _, tt := range documentedDefaults {
		t.Run(tt.readmeKey+"="+tt.readme, func(t *testing.T) {
			if got := tt.got(c); got != tt.want {
				t.Errorf("SetDefaults gives %v (%T), want %v (%T)", got, got, tt.want, tt.want)
			}
			if row := readmeRow(t, string(readme), tt.readmeKey); !strings.Contains(row, "`"+tt.readme+"`") {
				t.Errorf("README row does not document the default `%s`: %s", tt.readme, row)
			}
		})
	}
	if got := c.NATS.Embedded.Port; got != 4222 {
		t.Errorf("nats.embedded.port = %d, want 4222", got)
	}
	if got := c.Simulator.Flows[0].RateLimit; got != 10 {
		t.Errorf("simulator.flows[].rateLimit = %v, want 10", got)
	}
	if r := c.RiskRules[0]; r.Status != "ACTIVE" || r.Conditions.Level != "ANY" {
		t.Errorf("risk rule status, level = %q, %q, want ACTIVE, ANY", r.Status, r.Conditions.Level)
	}
}

func TestSetDefaultsKeepsSetValues(t *testing.T) {
	t.Parallel()
	c, err := config.Parse([]byte(`
streams: {maxAge: 24h, duplicateWindow: 10m, storage: memory}
worker: {maxAttempts: 3}
http: {addr: off}
flows:
  - name: f
    url: https://acme.workflows.okta.com/api/flo/abc/invoke
    clientToken: {file: /run/secrets/f}
    timeout: 45s
    rateLimit: 2.5
    concurrency: 1
entityRiskPolicy:
  - {name: r, priority: 5, status: inactive, conditions: {level: high}, flow: f}
`), "remediator.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	f := c.Flows[0]
	r := c.RiskRules[0]
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"streams.maxAge", c.Streams.MaxAge, 24 * time.Hour},
		{"streams.duplicateWindow", c.Streams.DuplicateWindow, 10 * time.Minute},
		{"streams.storage", c.Streams.Storage, "memory"},
		{"worker.maxAttempts", c.Worker.MaxAttempts, 3},
		{"http.addr (off disables)", c.HTTP.Addr, "off"},
		{"worker.quickRetries (defaulted)", *c.Worker.QuickRetries, 2},
		{"flows[0].timeout", f.Timeout, 45 * time.Second},
		{"flows[0].rateLimit", f.RateLimit, 2.5},
		{"flows[0].concurrency", f.Concurrency, 1},
		{"flows[0].executionIdHeader (defaulted)", f.ExecutionIDHeader, "X-Execution-Id"},
		{"entityRiskPolicy[0].status (upper-cased)", r.Status, "INACTIVE"},
		{"entityRiskPolicy[0].conditions.level (upper-cased)", r.Conditions.Level, "HIGH"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if got := c.Source(); got != "remediator.yaml" {
		t.Errorf("Source() = %q, want remediator.yaml", got)
	}
}

func TestParseEmptyGivesDefaults(t *testing.T) {
	t.Parallel()
	want := &config.Config{}
	want.SetDefaults()
	for _, doc := range []string{"", "\n", "# only a comment\n"} {
		c, err := config.Parse([]byte(doc), "empty.yaml")
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		for _, tt := range documentedDefaults {
			if strings.HasPrefix(tt.readmeKey, "flows[]") {
				continue // no flows in an empty document
			}
			if got := tt.got(c); got != tt.want {
				t.Errorf("Parse(%q): %s = %v, want %v", doc, tt.readmeKey, got, tt.want)
			}
		}
		if c.NATS.URL != "" || len(c.Flows) != 0 || len(c.Routes) != 0 || len(c.RiskRules) != 0 || c.Simulator.Enabled {
			t.Errorf("Parse(%q) = %+v, want nothing but defaults", doc, c)
		}
	}
}

// TestParseUnknownKey: an unknown key is reported by its path in the file and its line, with a
// did-you-mean when a known key is close, never by a Go type name (issue 11, defect 10). The
// value is not echoed: a misplaced key may hold a secret.
func TestParseUnknownKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, want string
	}{
		{"top level", "worker:\n  maxAttempts: 3\nworkers: {}\n", "workers (line 3): unknown key; did you mean worker?"},
		{"nested", "streams:\n  maxAge: 1h\n  maxAgee: 2h\n", "streams.maxAgee (line 3): unknown key; did you mean maxAge?"},
		{"worker typo", "worker:\n  maxAttempt: 3\n", "worker.maxAttempt (line 2): unknown key; did you mean maxAttempts?"},
		{"wrong case", "worker:\n  ackwait: 30s\n", "worker.ackwait (line 2): unknown key; did you mean ackWait?"},
		{"in a list entry", "flows:\n  - name: f\n    url: https://x/invoke\n    clientToken: {env: T}\n    token: s3cr3t-value\n", "flows[0].token (line 5): unknown key (known keys here: action, auth, blastRadius, breaker, clientToken"},
		{"in a flow mapping", "flows:\n  - {name: f, clientToken: {env: T, fille: /x}}\n", "flows[0].clientToken.fille (line 2): unknown key; did you mean file?"},
		{"deep in a list", "simulator:\n  flows:\n    - alias: a\n    - alias: b\n      ratelimit: 3\n", "simulator.flows[1].ratelimit (line 5): unknown key; did you mean rateLimit?"},
		{"nothing close", "worker:\n  colour: blue\n", "worker.colour (line 2): unknown key (known keys here: ackWait, dispatchConsumerState, dispatchMaxDeliver, intakeConcurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.doc), "remediator.yaml")
			if err == nil {
				t.Fatal("Parse accepted an unknown key")
			}
			msg := err.Error()
			if !strings.Contains(msg, "remediator.yaml: "+tt.want) {
				t.Errorf("error %q does not contain %q", msg, "remediator.yaml: "+tt.want)
			}
			for _, never := range []string{"config.", "s3cr3t-value", "not found in type"} {
				if strings.Contains(msg, never) {
					t.Errorf("error %q contains %q", msg, never)
				}
			}
		})
	}
}

// TestParseYAMLErrorLines: a syntax or type error names the line where the mistake is (yaml.v3
// alone reports a parser error at the line above) and, for a value of the wrong type, the key
// path and what it takes rather than a Go type.
func TestParseYAMLErrorLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, want string
	}{
		{"key indented under a value", "http:\n  addr: x\n bad: 1\n", "line 3: did not find expected key"},
		{"bad key deep in the file", "worker:\n  maxAttempts: 3\n  ackWait: 30s\nstreams:\n  maxAge: 1h\n   replicas: 1\n", "line 6: "},
		{"tab", "worker:\n  maxAttempts: 3\n\tackWait: 3s\n", "line 3: found a tab character"},
		{"unclosed quote", "http:\n  addr: \"x\n", "line 2: found unexpected end of stream"},
		{"duration", "worker:\n  ackWait: abc\n", "worker.ackWait (line 2): `abc` is not a duration (such as 30s, 5m or 168h)"},
		{"list for a number", "flows:\n  - name: f\n    rateLimit: [1]\n", "flows[0].rateLimit (line 3): a list is not a number"},
		{"scalar for a section", "worker: 5\n", "worker (line 1): `5` is not a mapping of keys"},
		{"one of several keys on a line", "flows:\n  - {rateLimit: abc, name: f}\n", "flows[0] (line 2): `abc` is not what the key takes"},
		{"the first key of a block", "worker:\n  maxAttempts: many\n", "worker.maxAttempts (line 2): `many` is not a whole number"},
		{"not a mapping", "- nats\n- worker\n", "the file (line 1): a list is not a mapping of keys"},
		{"duplicate key", "worker:\n  maxAttempts: 1\n  maxAttempts: 2\n", "worker.maxAttempts (line 3): mapping key \"maxAttempts\" already defined at line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.doc), "remediator.yaml")
			if err == nil {
				t.Fatal("Parse accepted the document")
			}
			if msg := err.Error(); !strings.Contains(msg, "remediator.yaml: "+tt.want) || strings.Contains(msg, "config.") {
				t.Errorf("error %q; want it to contain %q and no Go type name", msg, "remediator.yaml: "+tt.want)
			}
		})
	}
}

func TestParseNotYAML(t *testing.T) {
	t.Parallel()
	_, err := config.Parse([]byte("flows: [\n"), "broken.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "broken.yaml: ") {
		t.Errorf("Parse of broken YAML: error %v, want one starting with the file name", err)
	}
}

const oneFlow = `
flows:
  - name: notify
    url: https://acme.workflows.okta.com/api/flo/abc/invoke
    clientToken: {env: TOKEN}
`

// flowDoc is a configuration with one flow, fl being its extra keys (indented by 4).
func flowDoc(fl string) string {
	return oneFlow + fl
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		doc     string
		entry   string // e.g. "entityRiskPolicy[0] (block-all)"
		problem string
	}{
		{
			name: "detection types include and exclude",
			doc: oneFlow + `
entityRiskPolicy:
  - name: block-all
    priority: 1
    conditions:
      detectionTypes: {include: [BRUTE_FORCE_ATTACK], exclude: [SUSPICIOUS_APP_ACCESS]}
    flow: notify
`,
			entry:   "entityRiskPolicy[0] (block-all)",
			problem: "conditions.detectionTypes sets both include and exclude; Okta allows one or the other",
		},
		{
			name: "unknown detection type",
			doc: oneFlow + `
entityRiskPolicy:
  - {name: r1, priority: 1, conditions: {detectionTypes: {exclude: [BRUTE_FORCE]}}, flow: notify}
`,
			entry:   "entityRiskPolicy[0] (r1)",
			problem: `unknown detection type "BRUTE_FORCE"`,
		},
		{
			name:    "priority 99 is the default rule's",
			doc:     oneFlow + "entityRiskPolicy:\n  - {name: catch-all, priority: 99, flow: notify}\n",
			entry:   "entityRiskPolicy[0] (catch-all)",
			problem: "priority 99: custom rules need 1..98",
		},
		{
			name:    "priority 0 (missing)",
			doc:     oneFlow + "entityRiskPolicy:\n  - {name: no-priority, flow: notify}\n",
			entry:   "entityRiskPolicy[0] (no-priority)",
			problem: "priority 0: custom rules need 1..98",
		},
		{
			name:    "priority 150",
			doc:     oneFlow + "entityRiskPolicy:\n  - {name: ok, priority: 1, flow: notify}\n  - {name: late, priority: 150, flow: notify}\n",
			entry:   "entityRiskPolicy[1] (late)",
			problem: "priority 150: custom rules need 1..98",
		},
		{
			name:    "bad status",
			doc:     oneFlow + "entityRiskPolicy:\n  - {name: r, priority: 1, status: ENABLED, flow: notify}\n",
			entry:   "entityRiskPolicy[0] (r)",
			problem: `status "ENABLED" is not ACTIVE or INACTIVE`,
		},
		{
			name:    "bad level",
			doc:     oneFlow + "entityRiskPolicy:\n  - {name: r, priority: 1, conditions: {level: CRITICAL}, flow: notify}\n",
			entry:   "entityRiskPolicy[0] (r)",
			problem: `conditions.level "CRITICAL" is not ANY, LOW, MEDIUM or HIGH`,
		},
		{
			name:    "rule's flow not defined",
			doc:     oneFlow + "entityRiskPolicy:\n  - {name: r, priority: 1, flow: suspend}\n",
			entry:   "entityRiskPolicy[0] (r)",
			problem: `flow "suspend" is not defined under flows`,
		},
		{
			name:    "route's flow not defined",
			doc:     oneFlow + "routes:\n  - {name: unused-admin, match: {titles: [Unused Admin Account]}, flows: [notify, suspend]}\n",
			entry:   "routes[0] (unused-admin)",
			problem: `flow "suspend" is not defined under flows`,
		},
		{
			name:    "unknown unrouted action",
			doc:     "unrouted: drop\n",
			entry:   "unrouted",
			problem: `"drop" must be "skip" or "deadLetter"`,
		},
		{
			name:    "route without flows",
			doc:     oneFlow + "routes:\n  - {name: nothing, match: {titles: [x]}}\n",
			entry:   "routes[0] (nothing)",
			problem: "flows is empty",
		},
		{
			name:    "duplicate flow name",
			doc:     oneFlow + "  - {name: notify, url: https://acme.workflows.okta.com/api/flo/def/invoke, clientToken: {env: T2}}\n",
			entry:   "flows[1] (notify)",
			problem: `flow "notify" is defined twice`,
		},
		{
			name:    "flow name with a dot",
			doc:     "flows:\n  - {name: notify.slack, url: https://x/invoke, clientToken: {env: T}}\n",
			entry:   "flows[0] (notify.slack)",
			problem: `name "notify.slack" must be 1-64 letters, digits, '-' or '_'`,
		},
		{
			name:    "flow name with a space",
			doc:     "flows:\n  - {name: notify slack, url: https://x/invoke, clientToken: {env: T}}\n",
			entry:   "flows[0] (notify slack)",
			problem: `name "notify slack" must be 1-64`,
		},
		{
			name:    "url with a client token",
			doc:     "flows:\n  - {name: f, url: 'https://acme.workflows.okta.com/api/flo/abc/invoke?clientToken=s3cr3t', clientToken: {env: T}}\n",
			entry:   "flows[0] (f)",
			problem: "url carries a clientToken query parameter",
		},
		{
			name:    "url not http",
			doc:     "flows:\n  - {name: f, url: acme.workflows.okta.com/api/flo/abc/invoke, clientToken: {env: T}}\n",
			entry:   "flows[0] (f)",
			problem: "must be an http(s) invoke URL",
		},
		{
			name:    "client token from neither env nor file",
			doc:     "flows:\n  - {name: f, url: https://x/invoke}\n",
			entry:   "flows[0] (f)",
			problem: "clientToken needs exactly one of env or file",
		},
		{
			name:    "client token from both env and file",
			doc:     "flows:\n  - {name: f, url: https://x/invoke, clientToken: {env: T, file: /run/t}}\n",
			entry:   "flows[0] (f)",
			problem: "clientToken needs exactly one of env or file",
		},
		{
			name:    "timeout at Okta's cut-off",
			doc:     flowDoc("    timeout: 60s\n"),
			entry:   "flows[0] (notify)",
			problem: "timeout 1m0s must be above 0 and below Okta's 1m0s cut-off",
		},
		{
			name:    "timeout beyond Okta's cut-off",
			doc:     flowDoc("    timeout: 75s\n"),
			entry:   "flows[0] (notify)",
			problem: "timeout 1m15s must be above 0",
		},
		{
			name:    "negative timeout",
			doc:     flowDoc("    timeout: -1s\n"),
			entry:   "flows[0] (notify)",
			problem: "timeout -1s must be above 0",
		},
		{
			name:    "negative rate limit",
			doc:     flowDoc("    rateLimit: -5\n"),
			entry:   "flows[0] (notify)",
			problem: "rateLimit must be positive",
		},
		{
			name:    "negative concurrency",
			doc:     flowDoc("    concurrency: -1\n"),
			entry:   "flows[0] (notify)",
			problem: "concurrency must be at least 1",
		},
		{
			name:    "duplicate risk-rule priorities",
			doc:     oneFlow + "entityRiskPolicy:\n  - {name: first, priority: 3, flow: notify}\n  - {name: second, priority: 3, flow: notify}\n",
			entry:   "entityRiskPolicy (second)",
			problem: `priority 3 is also used by rule "first"; priorities must be unique`,
		},
		{
			name:    "streams.storage disk",
			doc:     "streams: {storage: disk}\n",
			entry:   "streams.storage",
			problem: `"disk" is not file or memory`,
		},
		{
			name:    "streams.replicas 7",
			doc:     "streams: {replicas: 7}\n",
			entry:   "streams.replicas",
			problem: "7 is not between 1 and 5",
		},
		{
			name:    "negative quick retries",
			doc:     "worker: {quickRetries: -1}\n",
			entry:   "worker.quickRetries",
			problem: "must not be negative",
		},
		{
			name:    "retry max delay below base",
			doc:     "worker: {retryBaseDelay: 10s, retryMaxDelay: 5s}\n",
			entry:   "worker.retryMaxDelay",
			problem: "5s is below worker.retryBaseDelay 10s",
		},
		{
			name:    "simulator alias with a slash",
			doc:     "simulator: {enabled: true, flows: [{alias: a/b}]}\n",
			entry:   "simulator.flows[0]",
			problem: `alias "a/b" must be letters, digits, '-' or '_'`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.Parse([]byte(tt.doc), "remediator.yaml")
			if err == nil {
				t.Fatalf("Parse accepted the configuration: %+v", c)
			}
			if c != nil {
				t.Errorf("Parse returned a configuration with its error")
			}
			// Each problem is one line: "<file>: <entry>: <problem>".
			prefix := "remediator.yaml: " + tt.entry + ": "
			lines := strings.Split(err.Error(), "\n")
			found := false
			for _, l := range lines {
				if strings.HasPrefix(l, prefix) && strings.Contains(l, tt.problem) {
					found = true
				}
			}
			if !found {
				t.Errorf("error does not report %q%s:\n%v", prefix, tt.problem, err)
			}
			if len(lines) != 1 {
				t.Errorf("error reports %d problems, want 1:\n%v", len(lines), err)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"timeout just below the cut-off": flowDoc("    timeout: 59s\n"),
		"client token from a file":       "flows:\n  - {name: f_1, url: https://x/invoke, clientToken: {file: /run/t}}\n",
		"detection types exclude only": oneFlow + "entityRiskPolicy:\n" +
			"  - {name: r, priority: 98, conditions: {detectionTypes: {exclude: [BRUTE_FORCE_ATTACK, SUSPICIOUS_APP_ACCESS]}}, flow: notify}\n",
		"lower-case status and level":             oneFlow + "entityRiskPolicy:\n  - {name: r, priority: 1, status: inactive, conditions: {level: low}, flow: notify}\n",
		"memory storage":                          "streams: {storage: memory}\n",
		"unrouted events dead-lettered":           "unrouted: deadLetter\n",
		"simulator alias unchecked when disabled": "simulator: {enabled: false, flows: [{alias: a/b}]}\n",
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := config.Parse([]byte(doc), "remediator.yaml"); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	doc := `
streams: {storage: disk}
flows:
  - {name: bad.name, url: 'https://x/invoke?clientToken=abc', clientToken: {env: T}, timeout: 75s, rateLimit: -1}
routes:
  - {name: r, flows: [missing]}
entityRiskPolicy:
  - {name: block-all, priority: 0, conditions: {detectionTypes: {include: [BRUTE_FORCE_ATTACK], exclude: [SUSPICIOUS_APP_ACCESS]}}, flow: nope}
`
	_, err := config.Parse([]byte(doc), "remediator.yaml")
	if err == nil {
		t.Fatal("Parse accepted the configuration")
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error %T is not a joined error", err)
	}
	want := []string{
		`remediator.yaml: streams.storage: "disk" is not file or memory`,
		`remediator.yaml: flows[0] (bad.name): name "bad.name"`,
		`remediator.yaml: flows[0] (bad.name): url carries a clientToken query parameter`,
		`remediator.yaml: flows[0] (bad.name): timeout 1m15s`,
		`remediator.yaml: flows[0] (bad.name): rateLimit must be positive`,
		`remediator.yaml: routes[0] (r): flow "missing" is not defined under flows`,
		`remediator.yaml: entityRiskPolicy[0] (block-all): priority 0`,
		`remediator.yaml: entityRiskPolicy[0] (block-all): conditions.detectionTypes sets both include and exclude`,
		`remediator.yaml: entityRiskPolicy[0] (block-all): flow "nope" is not defined under flows`,
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error does not report %q", w)
		}
	}
	if got := len(joined.Unwrap()); got != len(want) {
		t.Errorf("%d problems reported, want %d:\n%s", got, len(want), msg)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "no-such.yaml")
		_, err := config.Load(path)
		if err == nil {
			t.Fatal("Load of a missing file succeeded")
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v does not wrap fs.ErrNotExist", err)
		}
	})

	t.Run("invalid file names the path", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(path, []byte("streams: {storage: disk}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path)
		if err == nil || !strings.HasPrefix(err.Error(), path+": streams.storage: ") {
			t.Errorf("Load: error %v, want one starting with %q", err, path+": streams.storage: ")
		}
	})

	t.Run("valid file over defaults", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "good.yaml")
		if err := os.WriteFile(path, []byte("worker: {maxAttempts: 3}\n"+oneFlow), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(path)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if c.Worker.MaxAttempts != 3 || *c.Worker.QuickRetries != 2 || c.Flows[0].Timeout != 30*time.Second {
			t.Errorf("Load = worker %+v, flow %+v; want maxAttempts 3 and defaults elsewhere", c.Worker, c.Flows[0])
		}
		if c.Source() != path {
			t.Errorf("Source() = %q, want %q", c.Source(), path)
		}
	})

	t.Run("the shipped default file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "default.yaml")
		if err := os.WriteFile(path, config.DefaultYAML(), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(path)
		if err != nil {
			t.Fatalf("Load(default.yaml): %v", err)
		}
		if len(c.Flows) != 4 {
			t.Errorf("%d flows, want 4", len(c.Flows))
		}
	})
}

func TestQuickRetriesZeroMeansNone(t *testing.T) {
	t.Parallel()
	c, err := config.Parse([]byte("worker: {quickRetries: 0}\n"), "remediator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if *c.Worker.QuickRetries != 0 {
		t.Errorf("quickRetries: 0 became %d; an explicit 0 must turn quick retries off", *c.Worker.QuickRetries)
	}
}

// On a cluster the dispatch consumers keep their state in files unless told otherwise; on
// one server in memory.
func TestDispatchConsumerStateFollowsTheReplicas(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		yaml, want string
	}{
		{"", "memory"},
		{"streams: {replicas: 3}\n", "file"},
		{"streams: {replicas: 3}\nworker: {dispatchConsumerState: file}\n", "file"},
		{"worker: {dispatchConsumerState: file}\n", "file"},
	} {
		c, err := config.Parse([]byte(tt.yaml), "remediator.yaml")
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.yaml, err)
		}
		if got := c.Worker.DispatchConsumerState; got != tt.want {
			t.Errorf("Parse(%q): worker.dispatchConsumerState = %q, want %q", tt.yaml, got, tt.want)
		}
	}
}
