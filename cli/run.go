package cli

import (
	"log/slog"

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
			return service.Run(ctx, cfg, service.Options{Logger: log, TracerProvider: tr.Provider, Announce: g.stderr})
		},
	}
	return cmd
}
