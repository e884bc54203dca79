package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
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

	stdout, stderr io.Writer
	// stdin answers confirmation prompts; stdinTerminal says whether a person can type there.
	stdin         io.Reader
	stdinTerminal bool
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
		fmt.Fprintln(stderr, "error:", err)
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

Start it with "remediator run"; with no configuration it embeds NATS and simulates Okta.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", os.Getenv("REMEDIATOR_CONFIG"), "configuration file (env REMEDIATOR_CONFIG; default: the built-in configuration)")
	pf.StringVar(&g.natsURL, "nats-url", os.Getenv("NATS_URL"), "NATS server URL (env NATS_URL); `run` embeds a server when empty")
	pf.StringVar(&g.creds, "creds", os.Getenv("NATS_CREDS"), "NATS credentials file (env NATS_CREDS)")
	pf.StringVar(&g.tlsCA, "tlsca", "", "CA certificate for NATS TLS")
	pf.StringVar(&g.tlsCert, "tlscert", "", "client certificate for NATS TLS")
	pf.StringVar(&g.tlsKey, "tlskey", "", "client key for NATS TLS")
	pf.StringVar(&g.logLevel, "log-level", envOr("REMEDIATOR_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	pf.StringVar(&g.logFormat, "log-format", envOr("REMEDIATOR_LOG_FORMAT", "json"), "log format: json or text")
	root.AddCommand(newRunCmd(g), newPublishCmd(g), newStatusCmd(g), newDLQCmd(g), newStatsCmd(g), newFlowsimCmd(g), newSchemaCmd(g), newFlowsCmd(g), newPolicyCmd(g))
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

// loadConfig reads --config, or the built-in default.
func (g *globals) loadConfig() (*config.Config, error) {
	var (
		cfg *config.Config
		err error
	)
	if g.configFile != "" {
		cfg, err = config.Load(g.configFile)
	} else {
		cfg, err = config.Default()
	}
	if err != nil {
		return nil, err
	}
	if g.natsURL != "" {
		cfg.NATS.URL = g.natsURL
	}
	if g.creds != "" {
		cfg.NATS.CredsFile = g.creds
	}
	if g.tlsCA != "" {
		cfg.NATS.TLSCAFile = g.tlsCA
	}
	if g.tlsCert != "" {
		cfg.NATS.TLSCertFile, cfg.NATS.TLSKeyFile = g.tlsCert, g.tlsKey
	}
	return cfg, nil
}

// url is the NATS URL the client commands use.
func (g *globals) url() string {
	if g.natsURL == "" {
		return DefaultNATSURL
	}
	return g.natsURL
}

// connect opens a client connection for the one-shot commands. It fails fast when NATS is not
// there, rather than reconnecting forever.
func (g *globals) connect(ctx context.Context) (*broker.Broker, error) {
	log := slog.New(slog.DiscardHandler)
	return broker.Connect(ctx, broker.ConnConfig{
		URL: g.url(), Name: "remediator-cli", CredsFile: g.creds,
		TLSCAFile: g.tlsCA, TLSCertFile: g.tlsCert, TLSKeyFile: g.tlsKey, MaxReconnects: 0,
	}, log)
}

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
