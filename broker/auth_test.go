package broker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/broker/brokertest"
)

// authServer starts an embedded server with authentication on (credentials
// generated in a fresh directory), shut down when the test ends.
func authServer(t *testing.T) (*broker.Embedded, *broker.Credentials) {
	t.Helper()
	ctx := testCtx(t)
	creds, err := broker.EnsureCredentials(filepath.Join(t.TempDir(), "credentials"))
	if err != nil {
		t.Fatalf("EnsureCredentials: %v", err)
	}
	srv, err := broker.StartEmbedded(ctx, broker.EmbeddedConfig{Port: -1, StoreDir: t.TempDir(), Credentials: creds}, nil)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv, creds
}

// connectAs connects to srv with role's credentials.
func connectAs(t *testing.T, srv *broker.Embedded, creds *broker.Credentials, role broker.Role) *broker.Broker {
	t.Helper()
	b, err := broker.Connect(testCtx(t), creds.ConnConfigFor(role, brokertest.ConnConfig(srv.ClientURL())), nil)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(b.Close)
	return b
}

// rawConn is a plain NATS connection as role, to try what the broker API
// would never do: publish anywhere, subscribe anywhere.
func rawConn(t *testing.T, srv *broker.Embedded, creds *broker.Credentials, role broker.Role) *nats.Conn {
	t.Helper()
	seed, err := nats.NkeyOptionFromSeed(creds.File(role))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), seed, nats.CustomInboxPrefix(role.InboxPrefix()), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("raw connect as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// refused publishes on subject and reports whether the server answered with
// a permissions violation. The server processes a connection's commands in
// order, so once Flush's PONG is back the -ERR of the publish has arrived.
func refusedPublish(t *testing.T, nc *nats.Conn, subject string) error {
	t.Helper()
	if err := nc.Publish(subject, []byte(`{"forged":true}`)); err != nil {
		return err
	}
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		t.Fatalf("flush after publishing on %s: %v", subject, err)
	}
	return nc.LastError()
}

func wantViolation(t *testing.T, err error, what string) {
	t.Helper()
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
		t.Errorf("%s: err = %v, want a permissions violation from the server", what, err)
	}
}

// provisioned connects as worker, provisions the streams, the buckets and
// a durable consumer on the dispatch stream, as `remediator run` does.
func provisioned(t *testing.T, srv *broker.Embedded, creds *broker.Credentials) *broker.Broker {
	t.Helper()
	ctx := testCtx(t)
	w := connectAs(t, srv, creds, broker.RoleWorker)
	if err := w.Provision(ctx, brokertest.Streams()); err != nil {
		t.Fatalf("worker Provision: %v", err)
	}
	for _, bucket := range broker.KVBuckets {
		if _, err := w.KeyValue(ctx, broker.KVConfig{Bucket: bucket, History: 1, Replicas: 1}); err != nil {
			t.Fatalf("worker KeyValue %s: %v", bucket, err)
		}
	}
	c, err := w.Consumer(ctx, broker.ConsumerConfig{Stream: broker.StreamDispatch, Durable: "remediator-dispatch", AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: -1})
	if err != nil {
		t.Fatalf("worker Consumer: %v", err)
	}
	_ = c
	return w
}

func TestPublisherMayOnlyPublishEvents(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv, creds := authServer(t)
	w := provisioned(t, srv, creds)

	// Allowed: an event, acknowledged by JetStream (the ack comes back on the
	// publisher's own inbox).
	p := connectAs(t, srv, creds, broker.RolePublisher)
	for _, subject := range []string{"remediation.events.ispm", "remediation.events.itp"} {
		ack, err := p.Publish(ctx, subject, []byte(`{"id":"x"}`), broker.PublishOptions{})
		if err != nil {
			t.Fatalf("publisher Publish(%s): %v", subject, err)
		}
		if ack.Stream != broker.StreamEvents || ack.Sequence == 0 {
			t.Fatalf("publisher ack on %s = %+v, want stored in %s", subject, ack, broker.StreamEvents)
		}
	}

	forged := []string{
		"remediation.dispatch.suspend-okta-account.high",
		"remediation.status.succeeded",
		"remediation.dlq.unauthorized",
		"remediation.audit.flows.resume",
		"remediation.events.other",
		"$KV.remediation_controls.dryrun",
		"$KV.remediation_jobs.somekey",
		"$KV.remediation_budgets.suspend-okta-account",
		// no consumer may be created or deleted, nor any other API call made
		"$JS.API.CONSUMER.CREATE." + broker.StreamDispatch + ".sneaky",
		"$JS.API.CONSUMER.DURABLE.CREATE." + broker.StreamDispatch + ".sneaky",
		"$JS.API.CONSUMER.DELETE." + broker.StreamDispatch + ".remediator-dispatch",
		"$JS.API.STREAM.DELETE." + broker.StreamDLQ,
		"$JS.API.STREAM.MSG.GET." + broker.StreamEvents,
		"$JS.ACK." + broker.StreamDispatch + ".remediator-dispatch.1.1.1.1.0",
	}
	for _, subject := range forged {
		nc := rawConn(t, srv, creds, broker.RolePublisher) // a fresh one: LastError keeps the latest
		wantViolation(t, refusedPublish(t, nc, subject), "publisher publishing on "+subject)
	}
	// Nor may it listen to anyone else's replies or the streams' subjects.
	for _, subject := range []string{"_INBOX.>", broker.RoleOperator.InboxPrefix() + ".>", "remediation.>"} {
		nc := rawConn(t, srv, creds, broker.RolePublisher)
		if _, err := nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		if err := nc.FlushTimeout(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, nc.LastError(), "publisher subscribing to "+subject)
	}

	// Nothing forged was stored, and the consumer is still there.
	for _, stream := range []string{broker.StreamDispatch, broker.StreamStatus, broker.StreamDLQ, broker.StreamAudit} {
		info, err := w.StreamInfo(ctx, stream, false)
		if err != nil {
			t.Fatal(err)
		}
		if info.Messages != 0 {
			t.Errorf("%s holds %d messages after the publisher's forgeries, want 0", stream, info.Messages)
		}
	}
	if info, err := w.StreamInfo(ctx, broker.StreamEvents, false); err != nil || info.Messages != 2 {
		t.Errorf("%s: %+v, %v; want the 2 legitimate events only", broker.StreamEvents, info, err)
	}
	controls, err := w.OpenKeyValue(ctx, "remediation_controls")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := controls.Get(ctx, "dryrun"); !errors.Is(err, broker.ErrKeyNotFound) {
		t.Errorf("controls[dryrun]: err = %v, want not found", err)
	}
	infos, err := w.ConsumerInfos(ctx, broker.StreamDispatch)
	if err != nil || len(infos) != 1 {
		t.Errorf("dispatch consumers = %+v, %v; want remediator-dispatch alone", infos, err)
	}
}

func TestOperatorCannotForgeWorkerRecords(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv, creds := authServer(t)
	w := provisioned(t, srv, creds)
	mustPublish(t, w, "remediation.dlq.unauthorized", `{"dead":"letter"}`)

	op := connectAs(t, srv, creds, broker.RoleOperator)
	// What the CLI does: replay an event, audit it, flip a switch, read and
	// delete a dead letter.
	if _, err := op.Publish(ctx, "remediation.events.ispm", []byte(`{"replayed":true}`), broker.PublishOptions{}); err != nil {
		t.Fatalf("operator replay: %v", err)
	}
	if _, err := op.Publish(ctx, "remediation.audit.dlq.replay", []byte(`{}`), broker.PublishOptions{}); err != nil {
		t.Fatalf("operator audit: %v", err)
	}
	controls, err := op.OpenKeyValue(ctx, "remediation_controls")
	if err != nil {
		t.Fatalf("operator opens the controls: %v", err)
	}
	if _, err := controls.Put(ctx, "pause.notify-slack", []byte(`{}`)); err != nil {
		t.Fatalf("operator sets a switch: %v", err)
	}
	if _, err := op.GetMessage(ctx, broker.StreamDLQ, 1); err != nil {
		t.Fatalf("operator reads a dead letter: %v", err)
	}
	if _, err := op.ConsumerInfos(ctx, broker.StreamDispatch); err != nil {
		t.Fatalf("operator lists consumers: %v", err)
	}

	for _, subject := range []string{
		"remediation.dispatch.suspend-okta-account.high",
		"remediation.status.succeeded",
		"remediation.dlq.unauthorized",
		"$KV.remediation_jobs.somekey",
		"$KV.remediation_budgets.suspend-okta-account",
		"$JS.API.STREAM.DELETE." + broker.StreamEvents,
		"$JS.API.STREAM.PURGE." + broker.StreamStatus,
	} {
		nc := rawConn(t, srv, creds, broker.RoleOperator)
		wantViolation(t, refusedPublish(t, nc, subject), "operator publishing on "+subject)
	}
	info, err := w.StreamInfo(ctx, broker.StreamDispatch, false)
	if err != nil || info.Messages != 0 {
		t.Errorf("dispatch stream: %+v, %v; want no job", info, err)
	}
}

func TestUnauthenticatedConnectionsAreRefused(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv, _ := authServer(t)
	if b, err := broker.Connect(ctx, brokertest.ConnConfig(srv.ClientURL()), nil); err == nil {
		b.Close()
		t.Fatal("a connection without credentials was accepted")
	}
	// A well-formed key the server does not know is refused too.
	stranger := filepath.Join(t.TempDir(), "stranger.nk")
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	if err := os.WriteFile(stranger, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	cc := brokertest.ConnConfig(srv.ClientURL())
	cc.NKeyFile = stranger
	if b, err := broker.Connect(ctx, cc, nil); err == nil {
		b.Close()
		t.Fatal("a connection with an unknown NKey was accepted")
	}
}

func TestCredentialsArePrivateAndReused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "credentials")
	first, err := broker.EnsureCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("credentials directory mode = %s, want 0700", fi.Mode().Perm())
	}
	seeds := map[broker.Role][]byte{}
	for _, r := range broker.Roles {
		fi, err := os.Stat(first.File(r))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s seed mode = %s, want 0600", r, fi.Mode().Perm())
		}
		seeds[r], _ = os.ReadFile(first.File(r))
	}
	if _, err := broker.EnsureCredentials(dir); err != nil {
		t.Fatal(err)
	}
	for _, r := range broker.Roles {
		again, _ := os.ReadFile(first.File(r))
		if string(again) != string(seeds[r]) {
			t.Errorf("%s seed changed on the second start; clients would lose access", r)
		}
	}
	if string(seeds[broker.RoleWorker]) == string(seeds[broker.RoleOperator]) {
		t.Error("worker and operator share a seed")
	}
	// A seed others can read is refused, not used.
	if err := os.Chmod(first.File(broker.RoleOperator), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.EnsureCredentials(dir); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("EnsureCredentials with a 0644 seed: err = %v, want it refused", err)
	}
}

func TestNATSContextFile(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "credentials")
	creds, err := broker.EnsureCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nats-context.json")
	if err := creds.WriteNATSContext(path, "nats://127.0.0.1:4222", broker.RoleOperator); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"url": "nats://127.0.0.1:4222"`, `"nkey": "` + creds.File(broker.RoleOperator) + `"`, `"inbox_prefix": "_INBOX_operator"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("context file lacks %s:\n%s", want, data)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("context file mode = %s, want 0600", fi.Mode().Perm())
	}
}
