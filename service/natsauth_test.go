package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
	svc := servicetest.Start(t, servicetest.Config(t, dir), nil)
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
