package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/flow"
	"github.com/remediator/remediator/okta"
	"github.com/remediator/remediator/worker"
)

// This file maps the configuration onto the components' configs, every value explicitly: the
// defaults live in package config only (config/defaults.go), and the worker and the broker
// keep none of their own. Each mapping is one function, so that a component's config change
// is one place to adapt.

func connConfig(cfg *config.Config, url string, env func(string) (string, bool)) broker.ConnConfig {
	n := cfg.NATS
	c := broker.ConnConfig{
		URL: url, Name: "remediator", CredsFile: n.CredsFile, NKeyFile: n.NKeyFile, User: n.User,
		TLSCAFile: n.TLSCAFile, TLSCertFile: n.TLSCertFile, TLSKeyFile: n.TLSKeyFile,
		InboxPrefix: n.InboxPrefix, ConnectTimeout: n.ConnectTimeout,
		// -1 forever, 0 never: the broker helper's ConnConfig takes these as they are. Today's
		// broker still reads 0 as forever; config.Validate already refuses nothing else.
		MaxReconnects: *n.MaxReconnects,
	}
	if n.PasswordEnv != "" {
		c.Password, _ = env(n.PasswordEnv)
	}
	return c
}

func embeddedConfig(cfg *config.Config, storeDir string) broker.EmbeddedConfig {
	e := cfg.NATS.Embedded
	return broker.EmbeddedConfig{Host: e.Host, Port: e.Port, StoreDir: storeDir, SyncInterval: e.SyncInterval}
}

func streamsConfig(cfg *config.Config) broker.StreamsConfig {
	s := cfg.Streams
	return broker.StreamsConfig{
		MaxAge: s.MaxAge, Replicas: s.Replicas, DuplicateWindow: s.DuplicateWindow,
		MaxBytes: s.MaxBytes, Storage: s.Storage,
	}
}

// workerConfig takes the dependencies in base (Broker, Validator, Router, Invoker, Logger,
// providers) and sets every tunable from the configuration.
func workerConfig(cfg *config.Config, base worker.Config, flows []worker.Flow) worker.Config {
	w := cfg.Worker
	base.Flows = flows
	base.IntakeConcurrency = w.IntakeConcurrency
	base.MaxAttempts = w.MaxAttempts
	base.QuickRetries = *w.QuickRetries // 0: none
	base.QuickRetryDelay = w.QuickRetryDelay
	base.RetryBaseDelay = w.RetryBaseDelay
	base.RetryMaxDelay = w.RetryMaxDelay
	base.ShutdownTimeout = w.ShutdownTimeout
	base.AckWait = w.AckWait
	base.JobRetention = cfg.Streams.MaxAge
	base.Replicas = cfg.Streams.Replicas
	base.IntakeMaxDeliver = w.IntakeMaxDeliver
	base.DispatchMaxDeliver = w.DispatchMaxDeliver
	base.DispatchStateInMemory = w.DispatchConsumerState == "memory"
	base.MaxEventBytes = int(cfg.Limits.MaxEventBytes)
	base.Unrouted = worker.Unrouted(cfg.Unrouted)
	return base
}

// Flows turns the configured flows into worker flows with their credentials. env looks up the
// variables named by clientToken.env (os.LookupEnv, overlaid with the simulator's generated
// token); nil means os.LookupEnv. oc is the process's org client, shared by every flow with
// auth: oauth2 (see okta.go); nil when the okta block is not configured.
func Flows(cfg *config.Config, env func(string) (string, bool), oc *okta.Client) ([]worker.Flow, error) {
	if env == nil {
		env = os.LookupEnv
	}
	var out []worker.Flow
	for _, f := range cfg.Flows {
		if f.IsAction() {
			out = append(out, workerFlow(f, flow.Endpoint{Name: f.Name, Action: f.Action, Params: maps.Clone(f.Params), Timeout: f.Timeout}))
			continue
		}
		var src flow.TokenSource
		switch {
		case f.Auth == config.FlowAuthOAuth2:
		case f.ClientToken.Env != "":
			src = envToken{name: f.ClientToken.Env, lookup: env}
		case f.ClientToken.File != "":
			src = flow.TokenFromFile(f.ClientToken.File)
		default:
			return nil, fmt.Errorf("flow %q has no clientToken", f.Name)
		}
		auth, err := flowAuth(f, oc, src)
		if err != nil {
			return nil, err
		}
		out = append(out, workerFlow(f, flow.Endpoint{Name: f.Name, URL: f.URL, Auth: auth, Timeout: f.Timeout, ExecutionIDHeader: f.ExecutionIDHeader}))
	}
	return out, nil
}

// workerFlow is a configured flow (or native action) with its endpoint, as the worker takes it.
func workerFlow(f config.Flow, ep flow.Endpoint) worker.Flow {
	b := f.Breaker
	return worker.Flow{
		Endpoint:  ep,
		RateLimit: f.RateLimit, Concurrency: f.Concurrency, DryRun: f.DryRun,
		BlastMax: f.BlastRadius.Max, BlastWindow: f.BlastRadius.Window,
		Breaker: worker.BreakerConfig{
			ConsecutiveFailures: b.ConsecutiveFailures, FailureRatio: b.FailureRatio,
			MinRequests: b.MinRequests, Window: b.Window, Cooldown: b.Cooldown,
		},
	}
}

// envToken reads a client token from an environment variable through lookup, at each call (as
// flow.TokenFromEnv does), so that a generated simulator token needs no os.Setenv.
type envToken struct {
	name   string
	lookup func(string) (string, bool)
}

func (e envToken) Token(context.Context) (string, error) {
	v, _ := e.lookup(e.name)
	if v = strings.TrimSpace(v); v == "" {
		return "", errors.New("client token environment variable " + e.name + " is not set")
	}
	return v, nil
}

// overlayEnv is lookup with name set to value (the simulator's generated token).
func overlayEnv(lookup func(string) (string, bool), name, value string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if k == name {
			return value, true
		}
		return lookup(k)
	}
}
