package service

import (
	"context"
	"fmt"

	"github.com/remediator/remediator/action"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/okta"
	"github.com/remediator/remediator/worker"
)

// routingInvoker sends each endpoint to what can call it: a native action (Endpoint.Action
// set) to the org client's action invoker, a flow URL to the Workflows client. The worker
// sees one Invoker, so both kinds share its jobs, retries, budgets, breakers, idempotency,
// dry-run and blast-radius caps (PLAN decision 3).
type routingInvoker struct {
	flows   worker.Invoker
	actions worker.Invoker // nil when no action is configured
}

var _ worker.Invoker = routingInvoker{}

// newInvoker returns flows alone when no native action is configured, else a router with an
// action invoker on the process's org client (config validation has required the okta block).
func newInvoker(cfg *config.Config, flows worker.Invoker, oc *okta.Client) (worker.Invoker, error) {
	if !cfg.HasActions() {
		return flows, nil
	}
	if oc == nil {
		return nil, fmt.Errorf("%s: native actions need the okta block", cfg.Source())
	}
	acts, err := action.New(action.Config{Client: oc, MaxOutputBytes: cfg.Limits.MaxOutputBytes})
	if err != nil {
		return nil, err
	}
	return routingInvoker{flows: flows, actions: acts}, nil
}

func (r routingInvoker) Invoke(ctx context.Context, ep flow.Endpoint, req flow.Request) (*flow.Result, error) {
	if ep.Action != "" && r.actions != nil {
		return r.actions.Invoke(ctx, ep, req)
	}
	return r.flows.Invoke(ctx, ep, req)
}
