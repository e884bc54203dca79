package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/internal/testwait"
	"github.com/remediator/remediator/publish"
	"github.com/remediator/remediator/service"
	"github.com/remediator/remediator/service/servicetest"
	"github.com/remediator/remediator/status"
)

// TestEmbeddedNATSRequiresCredentials: the built-in configuration's server refuses a client
// without credentials, keeps the generated seeds private, runs the pipeline for an event
// handed in with the publisher's credentials, and leaves a nats CLI context for the operator.
func TestEmbeddedNATSRequiresCredentials(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "natsauth-token")
	dir := t.TempDir()
	logs := &servicetest.LogBuffer{}
	svc := servicetest.Start(t, servicetest.Config(t, dir), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, cancel := context.WithTimeout(context.Background(), testwait.DefaultTimeout)
	defer cancel()

	anon, err := broker.Connect(ctx, broker.ConnConfig{URL: svc.Addrs.NATS, ConnectTimeout: 5 * time.Second, MaxReconnects: 0}, nil)
	if err == nil {
		anon.Close()
		t.Fatal("the embedded server accepted a client without credentials")
	}
	if !errors.Is(err, broker.ErrAuth) {
		t.Errorf("anonymous connect: err = %v, want broker.ErrAuth", err)
	}

	credsDir := filepath.Join(dir, "credentials")
	if fi, err := os.Stat(credsDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("credentials directory: %v, %v; want mode 0700", fi, err)
	}
	for _, r := range broker.Roles {
		fi, err := os.Stat(broker.CredentialsFile(credsDir, r))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s seed: %v, %v; want mode 0600", r, fi, err)
		}
	}
	var nctx struct{ URL, NKey, InboxPrefix string }
	data, err := os.ReadFile(filepath.Join(credsDir, service.NATSContextFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &nctx); err != nil {
		t.Fatal(err)
	}
	if nctx.URL != svc.Addrs.NATS || nctx.NKey != broker.CredentialsFile(credsDir, broker.RoleOperator) {
		t.Errorf("nats context = %s; want the server's URL and the operator's seed", data)
	}

	seed, err := os.ReadFile("../examples/ispm-unused-admin.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.New(svc.ConnectAs(t, broker.RolePublisher), nil).Publish(ctx, seed, publish.Options{}); err != nil {
		t.Fatalf("publish as publisher: %v", err)
	}
	op := svc.Connect(t)
	testwait.Until(t, "succeeded status", func() bool { return countStatus(t, op, status.Succeeded) == 1 },
		testwait.WakeOn(servicetest.StreamWake(t, op, broker.StreamStatus, broker.SubjectsStatus)))
	// A not-json event: the dead-letter path, too.
	deadLetters := servicetest.StreamWake(t, op, broker.StreamDLQ, broker.SubjectsDLQ)
	if _, err := publish.New(svc.ConnectAs(t, broker.RolePublisher), nil).Publish(ctx, []byte("not json"), publish.Options{Subject: "remediation.events.ispm"}); err != nil {
		t.Fatalf("publish as publisher: %v", err)
	}
	testwait.Until(t, "a dead letter", func() bool {
		info, err := op.StreamInfo(ctx, broker.StreamDLQ, false)
		return err == nil && info.Messages == 1
	}, testwait.WakeOn(deadLetters))

	// The server refuses what a role may not do with a permissions violation, which only
	// shows in its log (an asynchronous error): the worker, the operator and the publisher
	// above must have met none. The server logs one as it refuses the command, so everything
	// done so far (acknowledged) is in the log by now.
	if out := logs.String(); strings.Contains(out, "Publish Violation") || strings.Contains(out, "Subscription Violation") {
		t.Errorf("the server refused something the pipeline needed:\n%s", logs.String())
	}
}

// TestEmbeddedNATSAuthOff: nats.embedded.auth false serves anyone, and generates nothing.
func TestEmbeddedNATSAuthOff(t *testing.T) {
	t.Setenv("REMEDIATOR_FLOWSIM_TOKEN", "natsauth-off-token")
	dir := t.TempDir()
	cfg := servicetest.Config(t, dir)
	cfg.NATS.Embedded.Auth = new(false)
	svc := servicetest.Start(t, cfg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testwait.DefaultTimeout)
	defer cancel()
	b, err := broker.Connect(ctx, broker.ConnConfig{URL: svc.Addrs.NATS, ConnectTimeout: 5 * time.Second, MaxReconnects: 0}, nil)
	if err != nil {
		t.Fatalf("connect without credentials to a server with auth off: %v", err)
	}
	b.Close()
	if _, err := os.Stat(filepath.Join(dir, "credentials")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("credentials directory with auth off: %v; want none", err)
	}
}
