package deployments

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/remediator/remediator/broker"
	"github.com/remediator/remediator/config"
)

var update = flag.Bool("update", false, "rewrite nats/remediator-auth.conf from broker.Permissions")

const authConfPath = "nats/remediator-auth.conf"

// authUser is the conf file's user of each role; its password comes from the variable.
func authUser(r broker.Role) (user, passwordVar string) {
	return "remediator-" + string(r), "REMEDIATOR_" + strings.ToUpper(string(r)) + "_PASSWORD"
}

// renderAuthConf writes the three roles as nats-server configuration: one account, one user
// per role, the subjects of broker.Permissions. The file is generated so that it cannot drift
// from what the embedded server enforces.
func renderAuthConf() string {
	var b strings.Builder
	b.WriteString(`# remediator's three NATS roles for an external server or cluster (issue 13).
# Generated from broker.Permissions: go test ./deployments -run TestAuthConf -update
#
# Include it in the server configuration (include ./remediator-auth.conf), set the three
# passwords in the server's environment (or replace them with bcrypt hashes made by
# "nats server passwd"), and give each client its user, its password and its inbox prefix:
#
#   worker    (remediator run):      nats.user remediator-worker,    nats.inboxPrefix _INBOX_worker
#   operator  (remediator CLI):      nats.user remediator-operator,  nats.inboxPrefix _INBOX_operator
#   publisher (detectors, bridges):  user remediator-publisher, inbox prefix _INBOX_publisher
#
# Each role may subscribe only to its own inbox prefix, so that no client can read the replies
# (stream contents, acks) another one gets. The account isolates remediator's streams and
# buckets from everything else on the server; its users reach nothing outside it.

accounts {
  REMEDIATOR {
    jetstream: enabled
    users: [
`)
	for _, r := range broker.Roles {
		user, pw := authUser(r)
		p := broker.Permissions(r)
		fmt.Fprintf(&b, "      {\n        user: %s\n        password: $%s\n        permissions: {\n", user, pw)
		fmt.Fprintf(&b, "          publish: {allow: [\n%s          ]}\n", quoteList(p.Publish))
		fmt.Fprintf(&b, "          subscribe: {allow: [\n%s          ]}\n", quoteList(p.Subscribe))
		b.WriteString("        }\n      }\n")
	}
	b.WriteString("    ]\n  }\n}\n")
	return b.String()
}

func quoteList(subjects []string) string {
	var b strings.Builder
	for _, s := range subjects {
		fmt.Fprintf(&b, "            %q\n", s)
	}
	return b.String()
}

// setAuthPasswords gives the conf file's password variables values, as the server's
// environment would.
func setAuthPasswords(t *testing.T) map[broker.Role]string {
	pw := map[broker.Role]string{}
	for _, r := range broker.Roles {
		_, v := authUser(r)
		pw[r] = "test-" + string(r) + "-password"
		t.Setenv(v, pw[r])
	}
	return pw
}

// TestAuthConf: the shipped file is what broker.Permissions says, and nats-server's own
// parser reads from it exactly those permissions for each role, in one JetStream account.
func TestAuthConf(t *testing.T) {
	want := renderAuthConf()
	if *update {
		if err := os.WriteFile(authConfPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(authConfPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s differs from broker.Permissions; regenerate it: go test ./deployments -run TestAuthConf -update", authConfPath)
	}

	pw := setAuthPasswords(t)
	opts, err := server.ProcessConfigFile(authConfPath)
	if err != nil {
		t.Fatalf("nats-server cannot load %s: %v", authConfPath, err)
	}
	if len(opts.Users) != len(broker.Roles) {
		t.Fatalf("%s has %d users, want one per role (%d)", authConfPath, len(opts.Users), len(broker.Roles))
	}
	for _, r := range broker.Roles {
		user, _ := authUser(r)
		i := slices.IndexFunc(opts.Users, func(u *server.User) bool { return u.Username == user })
		if i < 0 {
			t.Errorf("no user %s for role %s", user, r)
			continue
		}
		u := opts.Users[i]
		if u.Password != pw[r] {
			t.Errorf("%s: the password is not taken from the environment", user)
		}
		if u.Account == nil || u.Account.Name != "REMEDIATOR" {
			t.Errorf("%s is not in account REMEDIATOR", user)
		}
		p := broker.Permissions(r)
		if u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil ||
			!slices.Equal(u.Permissions.Publish.Allow, p.Publish) || !slices.Equal(u.Permissions.Subscribe.Allow, p.Subscribe) ||
			len(u.Permissions.Publish.Deny) > 0 || len(u.Permissions.Subscribe.Deny) > 0 {
			t.Errorf("%s: permissions %+v differ from broker.Permissions(%s)", user, u.Permissions, r)
		}
	}
}

// TestAuthConfServesTheRoles runs nats-server on the shipped file with a second account beside
// REMEDIATOR: the worker provisions and uses its streams, the publisher cannot publish a job,
// and the worker's credentials reach nothing of the other account.
func TestAuthConfServesTheRoles(t *testing.T) {
	pw := setAuthPasswords(t)
	opts, err := server.ProcessConfigFile(authConfPath)
	if err != nil {
		t.Fatal(err)
	}
	other := server.NewAccount("OTHER")
	opts.Accounts = append(opts.Accounts, other)
	opts.Users = append(opts.Users, &server.User{Username: "other", Password: "other-password", Account: other})
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	// The server registers its own copy of each configured account.
	registered, err := srv.LookupAccount("OTHER")
	if err != nil {
		t.Fatal(err)
	}
	if err := registered.EnableJetStream(map[string]server.JetStreamAccountLimits{"": {MaxMemory: -1, MaxStore: -1, MaxStreams: -1, MaxConsumers: -1}}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	connect := func(user, password, inbox string) (*broker.Broker, error) {
		return broker.Connect(ctx, broker.ConnConfig{
			URL: srv.ClientURL(), User: user, Password: password, InboxPrefix: inbox,
			ConnectTimeout: 5 * time.Second, MaxReconnects: 0,
		}, slog.New(slog.DiscardHandler))
	}
	streams := broker.StreamsConfig{MaxAge: time.Hour, Replicas: 1, DuplicateWindow: time.Minute, MaxBytes: -1, Storage: broker.StorageFile}

	// The other account has a stream of its own under the same name.
	ob, err := connect("other", "other-password", "")
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if err := ob.Provision(ctx, streams); err != nil {
		t.Fatal(err)
	}
	if _, err := ob.Publish(ctx, "remediation.dlq.secret", []byte("another tenant's dead letter"), broker.PublishOptions{}); err != nil {
		t.Fatal(err)
	}

	workerUser, _ := authUser(broker.RoleWorker)
	w, err := connect(workerUser, pw[broker.RoleWorker], broker.RoleWorker.InboxPrefix())
	if err != nil {
		t.Fatalf("worker connects: %v", err)
	}
	defer w.Close()
	if err := w.Provision(ctx, streams); err != nil {
		t.Fatalf("worker provisions its streams: %v", err)
	}
	if info, err := w.StreamInfo(ctx, broker.StreamDLQ, false); err != nil || info.Messages != 0 {
		t.Errorf("the worker sees %+v, %v in %s; want its own empty stream, not the other account's", info, err, broker.StreamDLQ)
	}

	pubUser, _ := authUser(broker.RolePublisher)
	p, err := connect(pubUser, pw[broker.RolePublisher], broker.RolePublisher.InboxPrefix())
	if err != nil {
		t.Fatalf("publisher connects: %v", err)
	}
	defer p.Close()
	if _, err := p.Publish(ctx, "remediation.events.ispm", []byte(`{}`), broker.PublishOptions{}); err != nil {
		t.Errorf("publisher publishes an event: %v", err)
	}
}

// TestComposeNATSAuth: the compose NATS nodes load the three roles (the file nats-server
// reads there, with the passwords of the containers' environment), publish their client port
// on the host's loopback only, and the workers and the host CLI log in as worker and operator
// with the matching passwords and inbox prefixes.
func TestComposeNATSAuth(t *testing.T) {
	p, err := loadCompose(t.Context(), composePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var natsPasswords map[string]string
	for _, name := range []string{"nats-1", "nats-2", "nats-3"} {
		s := p.Services[name]
		conf, _ := flagValue(s.Command, "-c")
		mounted := map[string]string{}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				mounted[v.Target] = v.Source
			}
		}
		src, ok := mounted[conf]
		if conf == "" || !ok {
			t.Errorf("%s: command -c %q: no configuration file mounted there", name, conf)
			continue
		}
		// The include is relative to the file: it must be mounted beside it.
		if _, ok := mounted[filepath.Join(filepath.Dir(conf), "remediator-auth.conf")]; !ok {
			t.Errorf("%s: remediator-auth.conf is not mounted beside %s", name, conf)
		}
		natsPasswords = map[string]string{}
		for _, r := range broker.Roles {
			_, v := authUser(r)
			natsPasswords[v] = env(s, v)
			t.Setenv(v, env(s, v))
		}
		// Lay the mounted files out as the container sees them, and parse the configuration
		// as the server there does (the include is resolved against the container path).
		root := t.TempDir()
		for target, source := range mounted {
			data, err := os.ReadFile(source)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(target)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, target), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		opts, err := server.ProcessConfigFile(filepath.Join(root, conf))
		if err != nil {
			t.Errorf("%s: nats-server cannot load %s (from %s): %v", name, conf, src, err)
			continue
		}
		if len(opts.Users) != len(broker.Roles) {
			t.Errorf("%s: %d users, want the %d roles", name, len(opts.Users), len(broker.Roles))
		}
		for _, u := range opts.Users {
			if u.Password == "" {
				t.Errorf("%s: user %s has no password (is its variable in the environment?)", name, u.Username)
			}
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d is published on %q, want 127.0.0.1 only", name, port.Target, port.HostIP)
			}
		}
	}

	workerUser, workerVar := authUser(broker.RoleWorker)
	for _, name := range []string{"worker-1", "worker-2"} {
		s := p.Services[name]
		cfgPath, _ := flagValue(s.Command, "--config")
		cfg, err := mountedComposeConfig(s, cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		n := cfg.NATS
		if n.User != workerUser || n.InboxPrefix != broker.RoleWorker.InboxPrefix() || n.PasswordEnv == "" {
			t.Errorf("%s: nats user %q, inboxPrefix %q, passwordEnv %q; want %s, %s and a password", name, n.User, n.InboxPrefix, n.PasswordEnv, workerUser, broker.RoleWorker.InboxPrefix())
		}
		if got := env(s, n.PasswordEnv); got == "" || got != natsPasswords[workerVar] {
			t.Errorf("%s: %s = %q, but NATS expects %s = %q", name, n.PasswordEnv, got, workerVar, natsPasswords[workerVar])
		}
	}

	cli, err := config.Load("compose/cli.yaml")
	if err != nil {
		t.Fatal(err)
	}
	opUser, opVar := authUser(broker.RoleOperator)
	if n := cli.NATS; n.User != opUser || n.InboxPrefix != broker.RoleOperator.InboxPrefix() || n.PasswordEnv != opVar {
		t.Errorf("compose/cli.yaml: nats %+v; want user %s, inboxPrefix %s, passwordEnv %s", n, opUser, broker.RoleOperator.InboxPrefix(), opVar)
	}
}

// TestKindNATSAuth: the kind NATS configuration carries the same roles as remediator-auth.conf
// (its accounts block, verbatim), and remediator there logs in as the worker.
func TestKindNATSAuth(t *testing.T) {
	t.Parallel()
	authConf, err := os.ReadFile(authConfPath)
	if err != nil {
		t.Fatal(err)
	}
	accounts := string(authConf[strings.Index(string(authConf), "accounts {"):])
	var indented strings.Builder
	for _, line := range strings.SplitAfter(accounts, "\n") {
		if strings.TrimSpace(line) != "" {
			indented.WriteString("    ")
		}
		indented.WriteString(line)
	}
	kind, err := os.ReadFile("kind/nats.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(kind), indented.String()) {
		t.Errorf("kind/nats.yaml: nats.conf lacks the accounts block of %s; copy it again (indented by four spaces)", authConfPath)
	}
	cfg, err := config.Load("kind/remediator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	workerUser, _ := authUser(broker.RoleWorker)
	if n := cfg.NATS; n.User != workerUser || n.InboxPrefix != broker.RoleWorker.InboxPrefix() || n.PasswordEnv == "" {
		t.Errorf("kind/remediator.yaml: nats user %q, inboxPrefix %q, passwordEnv %q; want the worker role", n.User, n.InboxPrefix, n.PasswordEnv)
	}
}
