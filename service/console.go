package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
	"github.com/remediator/remediator/console"
	"github.com/remediator/remediator/event"
	"github.com/remediator/remediator/ops"
	"github.com/remediator/remediator/policy"
	"github.com/remediator/remediator/schema"
	"github.com/remediator/remediator/seal"
	"github.com/remediator/remediator/worker"
)

// consoleAccess is the console's resolved token; off when the console does not run.
type consoleAccess struct {
	off       bool
	token     string
	generated bool
}

// resolveConsole decides, before anything starts, whether the console runs and with which
// token. It never runs open: with no token set and no OIDC, a production configuration gets
// no console (the log says how to turn it on); the built-in one gets a token made up for
// this run and shown once.
func resolveConsole(cfg *config.Config, env func(string) (string, bool), log *slog.Logger) (consoleAccess, error) {
	if !*cfg.HTTP.Console || cfg.HTTP.Addr == "off" {
		return consoleAccess{off: true}, nil
	}
	getenv := func(k string) string { v, _ := env(k); return v }
	tok, generated, err := cfg.ResolveConsoleToken(cfg.BuiltIn(), getenv, nil)
	if errors.Is(err, config.ErrConsoleTokenUnset) {
		if cfg.Console.OIDC.Enabled() {
			return consoleAccess{}, nil
		}
		log.Warn("ops console off: no console token is set (console.token; by default the REMEDIATOR_CONSOLE_TOKEN variable) and no console.oidc; set one, or http.console: false to silence this")
		return consoleAccess{off: true}, nil
	}
	if err != nil {
		return consoleAccess{}, err
	}
	return consoleAccess{token: tok, generated: generated}, nil
}

// announce shows a generated console token once, where the ingress secrets are shown.
func (a consoleAccess) announce(w io.Writer, httpAddr string) error {
	if a.off || !a.generated || w == nil {
		return nil
	}
	_, err := fmt.Fprintf(w, "console: generated a one-time token for this run (%s is unset): %s — sign in at http://%s/ui/\n", config.DefaultConsoleTokenEnv, a.token, httpAddr)
	return err
}

// lateHandler answers 503 until the console exists: the admin listener serves health before
// NATS is reached, the console only once it is.
type lateHandler struct{ h atomic.Pointer[http.Handler] }

func (l *lateHandler) set(h http.Handler) { l.h.Store(&h) }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := l.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "the console starts once remediator is connected to NATS", http.StatusServiceUnavailable)
}

// newConsole builds the console over the running service.
func newConsole(ctx context.Context, cfg *config.Config, a consoleAccess, b *broker.Broker, w *worker.Worker, router *policy.Router, validator *schema.Validator, keys *seal.Keyring, env func(string) (string, bool), log *slog.Logger) (*console.Console, error) {
	// What a flow receives for a stored event: validated, decoded and mapped as the worker does.
	inputs := func(subject string, data []byte, flow string) (map[string]any, error) {
		kind, ok := event.KindForSubject(subject)
		if !ok {
			return nil, fmt.Errorf("no event kind is published on %s", subject)
		}
		shape, err := validator.Validate(kind, data)
		if err != nil {
			return nil, err
		}
		ev, err := event.Decode(shape, data)
		if err != nil {
			return nil, err
		}
		return router.Inputs(ev, flow)
	}
	cc := console.Config{Inputs: inputs,
		Ops: ops.New(b, ops.Options{Keys: keys}), Flows: w, Authorizer: router,
		Token: a.token, Principal: cfg.Console.Principal, Groups: cfg.Console.Groups,
		SessionTTL: cfg.Console.SessionTTL, Window: cfg.Console.Window, JaegerURL: cfg.UI.JaegerURL,
		Logger: log.With("component", "console"),
	}
	if o := cfg.Console.OIDC; o.Enabled() {
		secret, err := config.ResolveSecret(o.ClientSecret, func(k string) string { v, _ := env(k); return v }, nil)
		if err != nil {
			return nil, fmt.Errorf("console.oidc.clientSecret: %w", err)
		}
		p, err := console.NewOIDC(ctx, console.OIDCConfig{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: secret, RedirectURL: o.RedirectURL})
		if err != nil {
			return nil, err
		}
		cc.OIDC = p
	}
	return console.New(cc)
}
