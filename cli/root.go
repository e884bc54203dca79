package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/telemetry"
)

// Version is set at build time with -ldflags "-X github.com/remediator/remediator/cli.Version=…".
var Version = "dev"

// DefaultNATSURL is where client commands look for NATS when neither --nats-url nor NATS_URL
// is set: the embedded server of a local `remediator run`.
const DefaultNATSURL = "nats://127.0.0.1:4222"

// globals are the flags every command takes.
type globals struct {
	configFile string
	natsURL    string
	logLevel   string
	logFormat  string
	jsonOut    bool
	creds      string
	tlsCA      string
	tlsCert    string
	tlsKey     string
	dataDir    string

	stdout, stderr io.Writer
	// stdin answers confirmation prompts; stdinTerminal says whether a person can type there.
	stdin         io.Reader
	stdinTerminal bool

	// resolved is the NATS connection the client commands use, once worked out by natsConn;
	// urlFrom says where its URL came from, for errors.
	resolved *broker.ConnConfig
	urlFrom  string
	// storeDir is the embedded server's data directory whose credentials the client
	// commands use when nothing else names any (localCredentials).
	storeDir string
}

// Main runs the command line with args and returns the process exit code. Confirmation
// prompts (dlq replay, dlq purge) read the process's standard input.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, &globals{stdout: stdout, stderr: stderr, stdin: os.Stdin, stdinTerminal: isTerminal(os.Stdin)}, args)
}

func run(ctx context.Context, g *globals, args []string) int {
	stdout, stderr := g.stdout, g.stderr
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "error:", safeText(err.Error()))
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ error }

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "remediator",
		Short: "Turn Okta ISPM issues and ITP risk signals into Okta Workflows remediation, on NATS JetStream",
		Long: `remediator validates identity-security findings, routes them to Okta Workflows flows,
invokes the flows with retries and rate limits, and records every result on a status stream
and every failure on a dead-letter stream.

Start it with "remediator run"; with no configuration it embeds NATS and simulates Okta.

Every command finds NATS the same way, each setting taken from the first that gives it:
  1. the flags --nats-url, --creds, --tlsca, --tlscert/--tlskey
  2. the environment: NATS_URL, NATS_CREDS
  3. the nats: section of the --config file (or $REMEDIATOR_CONFIG): url, credsFile,
     nkeyFile, user/passwordEnv, tlsCAFile, tlsCertFile/tlsKeyFile; a file with no nats.url
     means its embedded server, reached at nats.embedded.host:port
  4. the built-in default: nats://127.0.0.1:4222, the embedded server of a local "run"
So "remediator dlq list --config prod.yaml" acts on the server prod.yaml names.

Credentials: when none of the above names any (--creds, NATS_CREDS, nats.credsFile,
nats.nkeyFile, nats.user) and the URL is on this machine (127.0.0.1, localhost, ::1), the
commands use the ones "run" generated for its embedded server in DIR/credentials, where DIR
is --data-dir, else nats.embedded.storeDir of --config, else ./data/nats: "publish" as the
publisher role, every other command as the operator role.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	pf := root.PersistentFlags()
	// Flags default to empty so that the environment and the file can apply: each NATS setting
	// is taken from the flag, else the environment, else the file's nats: section, else the
	// built-in default (see natsConn).
	pf.StringVar(&g.configFile, "config", "", "configuration `FILE` (env REMEDIATOR_CONFIG; default: the built-in configuration); its nats: section says where NATS is for every command")
	pf.StringVar(&g.natsURL, "nats-url", "", "NATS server `URL` (env NATS_URL; else nats.url of --config; else "+DefaultNATSURL+"); run embeds a server when none is set")
	pf.StringVar(&g.creds, "creds", "", "NATS credentials `FILE` (env NATS_CREDS; else nats.credsFile of --config)")
	pf.StringVar(&g.tlsCA, "tlsca", "", "`FILE` of CA certificates for NATS TLS (else nats.tlsCAFile of --config)")
	pf.StringVar(&g.tlsCert, "tlscert", "", "client certificate `FILE` for NATS TLS (else nats.tlsCertFile of --config)")
	pf.StringVar(&g.dataDir, "data-dir", "", "embedded NATS storage `DIR` (overrides nats.embedded.storeDir; default ./data/nats): run stores JetStream and the generated NATS credentials there, the other commands read the credentials from DIR/credentials")
	pf.StringVar(&g.tlsKey, "tlskey", "", "client key `FILE` for NATS TLS (else nats.tlsKeyFile of --config)")
	pf.StringVar(&g.logLevel, "log-level", envOr("REMEDIATOR_LOG_LEVEL", "info"), "log `LEVEL`: debug, info, warn, error (env REMEDIATOR_LOG_LEVEL)")
	pf.StringVar(&g.logFormat, "log-format", envOr("REMEDIATOR_LOG_FORMAT", "json"), "log `FORMAT`: json or text (env REMEDIATOR_LOG_FORMAT)")
	root.AddCommand(newRunCmd(g), newPublishCmd(g), newStatusCmd(g), newDLQCmd(g), newStatsCmd(g), newFlowsimCmd(g), newSchemaCmd(g), newFlowsCmd(g), newPolicyCmd(g), newOktaCmd(g))
	root.AddCommand(newBenchCmd(g))
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (g *globals) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(g.logFormat) {
	case "json":
		h = slog.NewJSONHandler(g.stderr, opts)
	case "text":
		h = slog.NewTextHandler(g.stderr, opts)
	default:
		return nil, usageError{fmt.Errorf("--log-format %q: want json or text", g.logFormat)}
	}
	return slog.New(telemetry.LogHandler(telemetry.RedactHandler(h))), nil
}

// configPath is --config, else $REMEDIATOR_CONFIG; "" for the built-in configuration.
func (g *globals) configPath() string {
	return firstSet(g.configFile, os.Getenv("REMEDIATOR_CONFIG"))
}

// loadConfig reads --config, or the built-in default, and applies the NATS flags and
// environment over its nats: section (flag > environment > file).
func (g *globals) loadConfig() (*config.Config, error) {
	var (
		cfg *config.Config
		err error
	)
	if path := g.configPath(); path != "" {
		cfg, err = config.Load(path)
	} else {
		cfg, err = config.Default()
	}
	if err != nil {
		return nil, err
	}
	n := &cfg.NATS
	n.URL = firstSet(g.natsURL, os.Getenv("NATS_URL"), n.URL)
	n.CredsFile = firstSet(g.creds, os.Getenv("NATS_CREDS"), n.CredsFile)
	n.TLSCAFile = firstSet(g.tlsCA, n.TLSCAFile)
	if g.tlsCert != "" || g.tlsKey != "" {
		// A client certificate and its key go together: one from the flags, the other from
		// the file would not match.
		n.TLSCertFile, n.TLSKeyFile = g.tlsCert, g.tlsKey
	}
	return cfg, nil
}

// firstSet returns the first non-empty value.
func firstSet(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// natsConn works out where the client commands connect and how: each setting from its flag,
// else the environment (NATS_URL, NATS_CREDS), else the nats: section of --config (or
// $REMEDIATOR_CONFIG), else the built-in default. A file whose nats.url is empty describes an
// embedded server: the commands then connect to nats.embedded.host:port.
func (g *globals) natsConn() (broker.ConnConfig, error) {
	if g.resolved != nil {
		return *g.resolved, nil
	}
	c := broker.ConnConfig{URL: DefaultNATSURL}
	g.urlFrom = urlSource(g.natsURL, "NATS_URL")
	if g.configPath() != "" {
		cfg, err := g.loadConfig()
		if err != nil {
			return c, err
		}
		n := cfg.NATS
		c = broker.ConnConfig{
			URL: n.URL, CredsFile: n.CredsFile, NKeyFile: n.NKeyFile, User: n.User,
			TLSCAFile: n.TLSCAFile, TLSCertFile: n.TLSCertFile, TLSKeyFile: n.TLSKeyFile,
		}
		if n.PasswordEnv != "" {
			c.Password = os.Getenv(n.PasswordEnv)
		}
		switch {
		case c.URL == "":
			c.URL = embeddedURL(n.Embedded)
			g.urlFrom = "nats.embedded of " + g.configPath()
		case g.urlFrom == "":
			g.urlFrom = "nats.url of " + g.configPath()
		}
		g.storeDir = n.Embedded.StoreDir
		c.InboxPrefix = n.InboxPrefix
	} else {
		c.URL = firstSet(g.natsURL, os.Getenv("NATS_URL"), c.URL)
		c.CredsFile = firstSet(g.creds, os.Getenv("NATS_CREDS"))
		c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = g.tlsCA, g.tlsCert, g.tlsKey
	}
	g.storeDir = firstSet(g.dataDir, g.storeDir, config.DefaultEmbeddedStoreDir)
	g.resolved = &c
	return c, nil
}

// localCredentials returns c with role's credentials of the local embedded server (generated by
// "run" in <storeDir>/credentials) when c names no credentials of its own and its URL is on
// this machine. The second result is the seed file looked for ("" when none was), for errors.
func (g *globals) localCredentials(c broker.ConnConfig, role broker.Role) (broker.ConnConfig, string) {
	if c.CredsFile != "" || c.NKeyFile != "" || c.User != "" || c.Token != "" || !loopbackURL(c.URL) {
		return c, ""
	}
	dir, err := filepath.Abs(filepath.Join(g.storeDir, "credentials"))
	if err != nil {
		return c, ""
	}
	file := broker.CredentialsFile(dir, role)
	if _, err := os.Stat(file); err != nil {
		// None there: a server run with nats.embedded.auth false, or another data directory.
		return c, file
	}
	c.NKeyFile = file
	c.InboxPrefix = role.InboxPrefix()
	return c, file
}

// loopbackURL reports whether every server of urls (comma-separated) is on this machine.
func loopbackURL(urls string) bool {
	for _, u := range strings.Split(urls, ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil {
			return false
		}
		host := p.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

// embeddedURL is where a local client reaches the embedded server e describes.
func embeddedURL(e config.Embedded) string {
	host := e.Host
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1" // listening everywhere: reach it on loopback
	}
	return "nats://" + net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(e.Port))
}

// url is the NATS URL the client commands use, for messages.
func (g *globals) url() string {
	if c, err := g.natsConn(); err == nil {
		return c.URL
	}
	return firstSet(g.natsURL, os.Getenv("NATS_URL"), DefaultNATSURL)
}

// connect opens a client connection for the one-shot commands, as the operator role when it
// uses the local credentials (see connectAs).
func (g *globals) connect(ctx context.Context) (*broker.Broker, error) {
	return g.connectAs(ctx, broker.RoleOperator)
}

// connectAs opens a client connection for the one-shot commands. With no credentials
// configured and a server on this machine, it uses role's credentials of the local embedded
// server. It fails fast when NATS is not there: one attempt to connect, and only a few
// reconnects if the connection drops mid-way (a long replay), rather than reconnecting forever.
func (g *globals) connectAs(ctx context.Context, role broker.Role) (*broker.Broker, error) {
	c, err := g.natsConn()
	if err != nil {
		return nil, err
	}
	c, seedFile := g.localCredentials(c, role)
	c.Name = "remediator-cli"
	c.ConnectTimeout = cliConnectTimeout
	c.MaxReconnects = cliMaxReconnects
	b, err := broker.Connect(ctx, c, slog.New(slog.DiscardHandler))
	if err == nil {
		return b, nil
	}
	if errors.Is(err, broker.ErrAuth) && c.NKeyFile == "" && seedFile != "" {
		err = fmt.Errorf("%w (no credentials given, and no %s: pass --data-dir of the \"run\" that owns this server, or --config, or --creds)", err, seedFile)
	}
	if g.urlFrom != "" {
		return nil, fmt.Errorf("%w (the URL is from %s)", err, g.urlFrom)
	}
	return nil, err
}

// urlSource names where the URL comes from when a flag or the environment gives it; "" when
// neither does.
func urlSource(flag, env string) string {
	switch {
	case flag != "":
		return "--nats-url"
	case os.Getenv(env) != "":
		return env
	}
	return ""
}

// cliConnectTimeout bounds one dial and handshake of a client command.
const cliConnectTimeout = 5 * time.Second

// cliMaxReconnects is how many times a client command reconnects after its connection drops.
// Explicitly positive: 0 meant "forever" in broker.ConnConfig until it came to mean "none".
const cliMaxReconnects = 3

// startTracing sets up OpenTelemetry from the OTEL_* environment and returns a function that
// flushes pending spans (bounded, so that an unreachable collector cannot hold up the exit).
func startTracing(ctx context.Context) (*telemetry.Tracing, func(), error) {
	tr, err := telemetry.SetupTracing(ctx, Version)
	if err != nil {
		return nil, nil, err
	}
	return tr, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tr.Shutdown(sctx)
	}, nil
}
