package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/service"
)

func newRunCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the worker (embeds NATS and the Okta Workflows simulator unless configured otherwise)",
		Long: `Run validates, routes and dispatches events until SIGINT or SIGTERM, then shuts down
in stages: it stops fetching, lets in-flight events finish (worker.shutdownTimeout), records
their results, drains the NATS connection and stops the embedded server last.

With no --nats-url, NATS_URL or nats.url it starts an embedded NATS server with JetStream
on 127.0.0.1:4222 (data under ./data/nats). With no --config it uses the built-in
configuration, whose flows are served by an in-process Okta Workflows simulator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if g.dataDir != "" {
				cfg.NATS.Embedded.StoreDir = g.dataDir
			}
			ctx := cmd.Context()
			tr, flush, err := startTracing(ctx)
			if err != nil {
				return err
			}
			defer flush()
			if tr.Exporting {
				log.Info("exporting traces over OTLP", slog.String("endpoint", tr.Endpoint))
			} else {
				log.Info("traces are not exported: set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4318 for Jaeger) to send them")
			}
			log.Info("starting remediator", slog.String("version", Version), slog.String("config", cfg.Source()))
			httpLn, err := activatedListener()
			if err != nil {
				return err
			}
			return service.Run(ctx, cfg, service.Options{Logger: log, TracerProvider: tr.Provider, Announce: g.stderr, HTTPListener: httpLn})
		},
	}
	return cmd
}

// activatedListener is the admin listener handed over by a socket-activating supervisor
// (systemd's LISTEN_FDS protocol: one socket, file descriptor 3), or nil when none was: then
// http.addr is listened on. A supervisor (or a test) that binds the port itself never races
// another process for it, and knows the address before the process starts.
func activatedListener() (net.Listener, error) {
	if os.Getenv("LISTEN_FDS") != "1" {
		return nil, nil
	}
	if pid := os.Getenv("LISTEN_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return nil, nil // meant for another process
	}
	f := os.NewFile(3, "LISTEN_FDS socket")
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("LISTEN_FDS=1: file descriptor 3 is not a listening socket: %w", err)
	}
	_ = f.Close() // the listener holds its own duplicate
	return ln, nil
}
