package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/remediator/remediator/flowsim"
	"github.com/remediator/remediator/service"
)

func newFlowsimCmd(g *globals) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "flowsim",
		Short: "Run the Okta Workflows simulator on its own",
		Long: `flowsim serves the Okta Workflows invoke API (POST /api/flo/{alias}/invoke) for the flows
under simulator.flows of the configuration: client-token check, execution ids, the
10 invocations/s per-flow limit (429 beyond it) and injectable faults.

Inspect and steer it over HTTP:
  GET    /_sim/flows                          flows and their counters
  GET    /_sim/flows/{alias}/invocations      what each flow received
  PUT    /_sim/flows/{alias}/faults           {"errorRate":0.3,"latency":"200ms",...}
  DELETE /_sim/flows/{alias}/invocations      forget the record

The flows expect the client token in $REMEDIATOR_FLOWSIM_TOKEN (simulator.tokenEnv).`,
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
			if addr != "" {
				cfg.Simulator.Addr = addr
			}
			tok, err := service.SimulatorToken(cfg, log)
			if err != nil {
				return err
			}
			// With an okta block, the simulator also plays the org, with the app's public key.
			key, err := cfg.OktaKey(os.LookupEnv)
			if err != nil {
				return err
			}
			org, err := service.SimulatorOrg(cfg, key)
			if err != nil {
				return err
			}
			sim, err := flowsim.New(flowsim.Config{Flows: service.SimulatorFlows(cfg, tok), Org: org, Logger: log})
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var lc net.ListenConfig
			ln, err := lc.Listen(ctx, "tcp", cfg.Simulator.Addr)
			if err != nil {
				return fmt.Errorf("flowsim: cannot listen on %s: %w (use --addr)", cfg.Simulator.Addr, err)
			}
			srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
			log.Info("Okta Workflows simulator listening", slog.String("url", "http://"+ln.Addr().String()), slog.Int("flows", len(cfg.Simulator.Flows)))
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				sim.Close()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "listen `ADDRESS` (default simulator.addr, 127.0.0.1:8090)")
	return cmd
}
